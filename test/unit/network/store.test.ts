import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contains, formatNet, ipToNumber, overlaps, parseIpv4Net } from '../../../src/network/cidr.ts';
import { NetworkStore, pickAddress } from '../../../src/network/store.ts';
import type { NetworkRequest } from '../../../src/network/store.ts';
import { tempDir } from '../../support/temp.ts';

const req = (name: string, more: Partial<NetworkRequest> = {}): NetworkRequest => ({
  name,
  driver: undefined,
  subnet: undefined,
  gateway: undefined,
  ipRange: undefined,
  internal: false,
  labels: {},
  ...more,
});

describe('IPv4 networks', () => {
  it('parses, contains and overlaps', () => {
    const n = parseIpv4Net('10.89.1.0/24', '--subnet');
    assert.equal(formatNet(n), '10.89.1.0/24');
    assert.ok(contains(n, ipToNumber('10.89.1.200')!));
    assert.ok(!contains(n, ipToNumber('10.89.2.1')!));
    assert.ok(overlaps(n, parseIpv4Net('10.89.0.0/16', 'x')));
    assert.ok(!overlaps(n, parseIpv4Net('10.89.2.0/24', 'x')));
    assert.throws(() => parseIpv4Net('10.89.1.1/24', '--subnet'), /host bits set[\s\S]*/);
    assert.throws(() => parseIpv4Net('fd00::/64', '--subnet'), /not an IPv4 network/);
  });
});

describe('network store', () => {
  it('chooses free subnets, refuses overlaps and names in use, and hands out each address once', () => {
    const store = new NetworkStore(tempDir('net-store-'));
    const a = store.create(req('a'));
    const b = store.create(req('b'));
    assert.equal(a.subnet, '10.89.1.0/24');
    assert.equal(b.subnet, '10.89.2.0/24');
    assert.equal(a.gateway, '10.89.1.1');
    assert.throws(() => store.create(req('a')), /already exists/);
    assert.throws(() => store.create(req('c', { subnet: '10.89.0.0/16' })), /overlaps network a/);
    const c = store.create(req('c', { subnet: '172.30.0.0/29', ipRange: '172.30.0.4/30' }));
    const leases: Record<string, { ip: string; names: string[] }> = {};
    const got: string[] = [];
    for (let i = 0; i < 2; i++) {
      const ip = pickAddress(c, leases, undefined);
      leases[`c${i}`] = { ip, names: [] };
      got.push(ip);
    }
    assert.deepEqual(got, ['172.30.0.5', '172.30.0.6']);
    assert.throws(() => pickAddress(c, leases, undefined), /no free address/);
    assert.throws(() => pickAddress(c, leases, '172.30.0.5'), /already in use/);
    assert.throws(() => pickAddress(c, leases, '10.0.0.1'), /not a host address/);
    assert.equal(store.find(a.id.slice(0, 8))?.name, 'a');
    store.remove('a');
    assert.deepEqual(
      store.list().map((n) => n.name),
      ['b', 'c'],
    );
  });
});
