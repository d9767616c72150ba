import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allowRules, parseAllow, splitForAllowlist } from '../../../src/network/allow.ts';
import { parsePublish } from '../../../src/network/ports.ts';

describe('--publish-allow', () => {
  it('normalizes networks and refuses what is not one', () => {
    assert.equal(parseAllow('127.0.0.2'), '127.0.0.2/32');
    assert.equal(parseAllow('10.0.0.0/8'), '10.0.0.0/8');
    assert.equal(parseAllow('2001:DB8::/32'), '2001:db8::/32');
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/', '1.2.3.4/8/9', '::1/129']) {
      assert.throws(() => parseAllow(bad), /not an IPv4 or IPv6 network/, bad);
    }
  });

  it('sends loopback to hutch-portfwd and the primary address to pasta', () => {
    const split = splitForAllowlist(
      [
        ...parsePublish('8080:80'),
        ...parsePublish('127.0.0.1:9090:90'),
        ...parsePublish('10.1.1.1:7070:70'),
        ...parsePublish('5353:53/udp'),
      ],
      { primary: '192.0.2.2', others: ['fd00::2'] },
    );
    assert.deepEqual(
      split.pasta.map((b) => `${b.hostIp}:${b.hostPort}/${b.protocol}`),
      ['192.0.2.2:8080/tcp', '10.1.1.1:7070/tcp', '192.0.2.2:5353/udp'],
    );
    assert.deepEqual(
      split.forward.map((b) => `${b.hostIp}:${b.hostPort}/${b.protocol}`),
      [
        '127.0.0.1:8080/tcp',
        '::1:8080/tcp',
        'fd00::2:8080/tcp',
        '127.0.0.1:9090/tcp',
        '127.0.0.1:5353/udp',
        '::1:5353/udp',
        'fd00::2:5353/udp',
      ],
    );
  });

  it('writes rules that judge only published ports, and not on loopback', () => {
    const rules = allowRules(
      [...parsePublish('8080:80'), ...parsePublish('5353:53/udp')],
      ['10.0.0.0/8', '::1/128'],
    );
    assert.match(
      rules,
      /set allow4 \{\n {4}type ipv4_addr\n {4}flags interval\n {4}elements = \{ 10\.0\.0\.0\/8 \}/,
    );
    assert.match(rules, /elements = \{ ::1\/128 \}/);
    assert.match(rules, /iifname "lo" accept/);
    assert.match(rules, /tcp dport \{ 80 \} ip saddr != @allow4 reject with tcp reset/);
    assert.match(rules, /udp dport \{ 53 \} ip6 saddr != @allow6 drop/);
    // An empty family refuses all of that family.
    assert.doesNotMatch(
      allowRules(parsePublish('80'), ['10.0.0.0/8']).split('set allow6')[1]!.split('}')[0]!,
      /elements/,
    );
  });
});
