import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  contains6,
  ipv6ToNumber,
  numberToIpv6,
  overlaps6,
  parseIpv6Net,
  randomUla64,
} from '../../../src/network/cidr6.ts';

describe('IPv6 networks', () => {
  it('reads and writes addresses in their canonical form', () => {
    for (const [text, canonical] of [
      ['fd00::1', 'fd00::1'],
      ['FD00:0000:0000:0000:0000:0000:0000:0001', 'fd00::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['fe80::', 'fe80::'],
    ]) {
      const n = ipv6ToNumber(text!);
      assert.notEqual(n, undefined, text);
      assert.equal(numberToIpv6(n!), canonical, text);
    }
    for (const bad of ['', '1::2::3', '12345::', 'fd00:1:2:3:4:5:6:7:8', 'g::1', '1.2.3.4', ':1'])
      assert.equal(ipv6ToNumber(bad), undefined, bad);
  });

  it('parses networks, refusing host bits, tiny ones and IPv4', () => {
    const n = parseIpv6Net('fd00:78::/64', '--subnet');
    assert.equal(n.prefix, 64);
    assert.equal(contains6(n, ipv6ToNumber('fd00:78::ffff')!), true);
    assert.equal(contains6(n, ipv6ToNumber('fd00:79::1')!), false);
    assert.throws(() => parseIpv6Net('fd00:78::1/64', '--subnet'), /host bits set/);
    assert.throws(() => parseIpv6Net('fd00:78::/126', '--subnet'), /at least 256 addresses/);
    assert.throws(() => parseIpv6Net('10.0.0.0/8', '--subnet'), /not an IPv6 network/);
    assert.equal(overlaps6(n, parseIpv6Net('fd00:78:0:0:1::/80', 's')), true);
    assert.equal(overlaps6(n, parseIpv6Net('fd00:79::/64', 's')), false);
  });

  it('makes unique local /64s: fd, a 40-bit global ID, subnet 0', () => {
    const seq = [0x12, 0x34, 0x56, 0x78, 0x9a].map((b) => b / 256);
    const net = randomUla64(() => seq.shift()!);
    assert.equal(`${numberToIpv6(net.base)}/${net.prefix}`, 'fd12:3456:789a::/64');
  });
});
