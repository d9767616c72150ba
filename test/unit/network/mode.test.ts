import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultRoute } from '../../../src/network/attach.ts';
import { defaultNetworkMode, parseNetworkMode } from '../../../src/network/mode.ts';
import { pastaArgs } from '../../../src/network/pasta.ts';

describe('--network values', () => {
  it('knows the modes, and what the default stands for', () => {
    assert.deepEqual(parseNetworkMode('none', 'pasta'), { kind: 'none' });
    assert.deepEqual(parseNetworkMode('', 'pasta'), { kind: 'pasta', options: [] });
    assert.deepEqual(parseNetworkMode('default', 'slirp4netns').kind, 'slirp4netns');
    assert.deepEqual(parseNetworkMode('pasta:--mtu,1500', 'none'), {
      kind: 'pasta',
      options: ['--mtu', '1500'],
    });
    assert.deepEqual(parseNetworkMode('container:web', 'none'), { kind: 'container', ref: 'web' });
    const slirp = parseNetworkMode(
      'slirp4netns:mtu=1500,allow_host_loopback=true,port_handler=slirp4netns',
      'none',
    );
    assert.equal(slirp.kind, 'slirp4netns');
    assert.equal(slirp.kind === 'slirp4netns' && slirp.options.mtu, 1500);
    assert.equal(slirp.kind === 'slirp4netns' && slirp.options.allowHostLoopback, true);
  });

  it('refuses what it cannot do, with the reason', () => {
    assert.throws(() => parseNetworkMode('pasta:--netns,/x', 'none'), /set by hutch/);
    assert.throws(() => parseNetworkMode('pasta:-t,80', 'none'), /set by hutch/);
    assert.throws(() => parseNetworkMode('slirp4netns:mtu=10', 'none'), /mtu=10/);
    assert.throws(
      () => parseNetworkMode('slirp4netns:port_handler=rootlesskit', 'none'),
      /port_handler=rootlesskit/,
    );
    assert.throws(() => parseNetworkMode('slirp4netns:colour=blue', 'none'), /unknown slirp4netns option/);
    assert.throws(() => parseNetworkMode('container:', 'none'), /no container/);
    assert.throws(() => parseNetworkMode('ns:relative', 'none'), /absolute/);
    assert.throws(() => parseNetworkMode('my net', 'none'), /not a network mode or network name/);
    assert.deepEqual(parseNetworkMode('front,back,front', 'none'), {
      kind: 'networks',
      names: ['front', 'back'],
    });
  });

  it('defaults, rootless, to pasta, then slirp4netns, then none; rootful to the default bridge network; unless configured', () => {
    assert.equal(
      defaultNetworkMode(undefined, () => true, true),
      'pasta',
    );
    assert.equal(
      defaultNetworkMode(undefined, (t) => t === 'slirp4netns', true),
      'slirp4netns',
    );
    assert.equal(
      defaultNetworkMode(undefined, () => false, true),
      'none',
    );
    assert.equal(
      defaultNetworkMode(undefined, () => true, false),
      'bridge',
    );
    assert.equal(
      defaultNetworkMode('host', () => true, true),
      'host',
    );
    assert.equal(
      defaultNetworkMode('pasta', () => true, false),
      'pasta',
    );
    assert.deepEqual(parseNetworkMode('bridge', 'pasta'), { kind: 'networks', names: ['hutch'] });
    assert.deepEqual(parseNetworkMode('', 'bridge'), { kind: 'networks', names: ['hutch'] });
  });

  it("reads the host's default gateway from the route table", () => {
    const table =
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
      'eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' +
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n';
    assert.deepEqual(defaultRoute(table), { gateway: '192.0.2.1', iface: 'eth0' });
    assert.equal(defaultRoute(table.split('\n').slice(0, 2).join('\n')), undefined);
  });

  it('gives pasta the ports, no reverse forwarding, and the gateway only when allowed', () => {
    const args = pastaArgs({
      pasta: 'pasta',
      netns: '/run/ns',
      pidFile: '/run/ns.pid',
      ports: [
        { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
        { hostIp: '', hostPort: 5353, containerPort: 53, protocol: 'udp' },
      ],
      hostLoopback: false,
      dnsForward: undefined,
      extra: [],
    });
    const joined = args.join(' ');
    assert.match(joined, /-t 127\.0\.0\.1\/8080:80/);
    assert.match(joined, /-u 5353:53/);
    assert.match(joined, /-T none -U none/);
    assert.match(joined, /--no-map-gw/);
    assert.match(joined, /--runas 0/);
  });
});
