/**
 * User networks as the unprivileged user: `hutch network` commands, two
 * containers reaching each other by name and alias through hutch-dns,
 * --internal, addresses under concurrent starts, published ports through
 * hutch-portfwd, the name server restarted after a kill, and nothing left
 * once the last container is gone.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testHosts } from '../../setup/testhosts.ts';
import { runHutchAsync, sandbox } from '../../support/hutch.ts';
import { networkHelpers, netnsFiles as netnsListing, udpEchoRun } from '../../support/net.ts';
import type { Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';
import { which } from '../../../src/util/which.ts';

const NO_PASTA = which('pasta') ? false : 'pasta is not installed (Debian: apt install passt)';
const HOSTS = testHosts();

const HTTPD = ['sh', '-c', 'mkdir -p /w && echo hello > /w/i.html && exec httpd -f -p 80 -h /w'];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('user networks (rootless)', { skip: NEEDS_REGISTRY || NO_PASTA }, () => {
  let box: Sandbox;
  const img = (): string => `${REGISTRY}/busybox:latest`;
  const h = (args: string[]) => box.hutch(args);
  const ok = (args: string[]): string => {
    const r = h(args);
    assert.equal(r.status, 0, `hutch ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** GET /i.html of httpd at host:80, from a new container on the network. */
  const fetchFrom = (net: string, host: string): string =>
    h([
      'run',
      '--rm',
      '--network',
      net,
      img(),
      'sh',
      '-c',
      `echo "GET /i.html HTTP/1.0" | timeout 5 nc ${host} 80`,
    ]).stdout;
  const helpers = (): string[] => networkHelpers(box.runroot);
  const netnsFiles = (): string[] => netnsListing(box.runroot);

  before(() => {
    box = sandbox();
    ok(['pull', '-q', img()]);
  });
  after(() => box.cleanup());

  it('creates, lists, inspects and removes networks, refusing what cannot be', () => {
    const id = ok(['network', 'create', '--label', 'team=a', 'one']).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    ok(['network', 'create', '--subnet', '10.77.0.0/16', '--gateway', '10.77.0.254', '--internal', 'two']);
    assert.equal(ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']), 'one bridge\ntwo bridge\n');
    assert.equal(ok(['network', 'ls', '-q', '--filter', 'label=team=a']), `${id.slice(0, 12)}\n`);
    const [two] = JSON.parse(ok(['network', 'inspect', 'two'])) as {
      IPAM: { Config: { Subnet: string; Gateway: string }[] };
      Internal: boolean;
    }[];
    assert.deepEqual(two!.IPAM.Config, [{ Subnet: '10.77.0.0/16', Gateway: '10.77.0.254' }]);
    assert.equal(two!.Internal, true);
    const bad: [string[], RegExp][] = [
      [['network', 'create', 'one'], /already exists/],
      [['network', 'create', '--subnet', '10.77.5.0/24', 'three'], /overlaps network two/],
      [['network', 'create', '--subnet', '10.78.0.1/24', 'three'], /host bits set/],
      [
        ['network', 'create', '--subnet', '10.78.0.0/24', '--gateway', '10.79.0.1', 'three'],
        /not a host address/,
      ],
      [['network', 'create', '-d', 'macvlan', 'three'], /driver "macvlan" is not supported/],
      [['network', 'create', 'host'], /--network mode/],
    ];
    for (const [args, why] of bad) {
      const r = h(args);
      assert.equal(r.status, 125, args.join(' '));
      assert.match(r.stderr, why);
    }
    const missing = h(['network', 'inspect', 'nope']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /network nope not found/);
    assert.equal(ok(['network', 'rm', 'one', 'two']), 'one\ntwo\n');
    assert.equal(ok(['network', 'ls', '-q']), '');
  });

  it('two containers reach each other by name and by alias; the way out works and --internal has none', async () => {
    ok(['network', 'create', 'apps']);
    ok(['network', 'create', '--internal', 'closed']);
    ok(['run', '-d', '--name', 'web', '--network', 'apps', '--network-alias', 'www', img(), ...HTTPD]);
    try {
      assert.match(fetchFrom('apps', 'web'), /hello/);
      assert.match(fetchFrom('apps', 'www'), /hello/);
      const ip = ok(['inspect', '--format', '{{.NetworkSettings.Networks.apps.IPAddress}}', 'web']).trim();
      assert.match(ip, /^10\.89\.\d+\.\d+$/);
      assert.match(fetchFrom('apps', ip), /hello/);
      // Names are per network: a container on another network does not find web.
      const other = h(['run', '--rm', '--network', 'closed', img(), 'nslookup', 'web']);
      assert.notEqual(other.status, 0, other.stdout);
      if (HOSTS) {
        const agent = HOSTS[0]!;
        const ping = `printf 'GET /ping HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc ${agent.address} 7070 | head -c 200`;
        assert.match(h(['run', '--rm', '--network', 'apps', img(), 'sh', '-c', ping]).stdout, /200 OK/);
        assert.doesNotMatch(
          h(['run', '--rm', '--network', 'closed', img(), 'sh', '-c', ping]).stdout,
          /200 OK/,
        );
      }
    } finally {
      ok(['rm', '-f', 'web']);
    }
    const inUse = h(['network', 'rm', 'apps']);
    assert.equal(inUse.status, 0, inUse.stderr);
    ok(['network', 'rm', 'closed']);
  });

  it('an IPv6 network: each container an address of each family, AAAA names, IPv6 between containers', () => {
    ok(['network', 'create', '--subnet', '10.78.0.0/24', '--subnet', 'fd00:78::/64', 'dual']);
    ok(['network', 'create', '--ipv6', 'ula']);
    const [dual, ula] = JSON.parse(ok(['network', 'inspect', 'dual', 'ula'])) as {
      EnableIPv6: boolean;
      IPAM: { Config: { Subnet: string; Gateway: string }[] };
    }[];
    assert.equal(dual!.EnableIPv6, true);
    assert.deepEqual(dual!.IPAM.Config[1], { Subnet: 'fd00:78::/64', Gateway: 'fd00:78::1' });
    assert.match(ula!.IPAM.Config[1]!.Subnet, /^fd[0-9a-f]{2}:[0-9a-f:]+\/64$/, 'a unique local /64');
    const bad = h(['network', 'create', '--subnet', 'fd00:78:0:0:1::/80', 'clash']);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /overlaps network dual/);
    ok(['run', '-d', '--name', 'six', '--network', 'dual', img(), ...HTTPD]);
    try {
      const ip6 = ok([
        'inspect',
        '--format',
        '{{.NetworkSettings.Networks.dual.GlobalIPv6Address}}',
        'six',
      ]).trim();
      assert.equal(ip6, 'fd00:78::2');
      const out = ok([
        'run',
        '--rm',
        '--network',
        'dual',
        img(),
        'sh',
        '-c',
        `ip -6 -o addr show eth0 scope global; nslookup -type=AAAA six; printf 'GET /i.html HTTP/1.0\\r\\n\\r\\n' | nc ${ip6} 80`,
      ]);
      assert.match(out, /inet6 fd00:78::3\/64/);
      assert.match(out, /Address: fd00:78::2/);
      assert.match(out, /hello/);
    } finally {
      ok(['rm', '-f', 'six']);
    }
    ok(['network', 'rm', 'dual', 'ula']);
  });

  it('10 containers started at once on one network get distinct addresses; the last one leaves nothing behind', async () => {
    ok(['network', 'create', 'many']);
    const runs = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        runHutchAsync(['run', '-d', '--name', `m${i}`, '--network', 'many', img(), 'sleep', '300'], box.env),
      ),
    );
    runs.forEach((r, i) => assert.equal(r.status, 0, `m${i}: ${r.stderr}`));
    const ips = Array.from({ length: 10 }, (_, i) =>
      ok(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', `m${i}`]).trim(),
    );
    assert.equal(new Set(ips).size, 10, ips.join(' '));
    assert.deepEqual(
      [...new Set(helpers())],
      ['hutch-dns', 'passt.avx2'].filter((n) => helpers().includes(n)),
    );
    assert.ok(helpers().includes('hutch-dns'), helpers().join(' '));
    ok(['rm', '-f', ...Array.from({ length: 10 }, (_, i) => `m${i}`)]);
    assert.deepEqual(helpers(), [], 'no pasta or hutch-dns once no container is on a network');
    assert.deepEqual(netnsFiles(), [], 'no namespace file');
    assert.deepEqual(box.problems(), []);
    ok(['network', 'rm', 'many']);
  });

  it('network connect and disconnect change a running container at once', () => {
    ok(['network', 'create', 'front']);
    ok(['network', 'create', 'back']);
    ok(['run', '-d', '--name', 'both', '--network', 'front', img(), ...HTTPD]);
    try {
      ok(['network', 'connect', '--alias', 'api', 'back', 'both']);
      assert.match(ok(['exec', 'both', 'ip', '-o', '-4', 'addr']), /eth1 +inet 10\.89\./);
      assert.match(fetchFrom('back', 'api'), /hello/);
      const again = h(['network', 'connect', 'back', 'both']);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /already connected to network back/);
      ok(['network', 'disconnect', 'back', 'both']);
      assert.doesNotMatch(ok(['exec', 'both', 'ip', '-o', '-4', 'addr']), /eth1/);
      assert.equal(fetchFrom('back', 'api'), '');
      assert.equal(ok(['inspect', '--format', '{{.HostConfig.NetworkMode}}', 'both']).trim(), 'front');
      const pasta = h(['create', '--name', 'p', img()]);
      assert.equal(pasta.status, 0, pasta.stderr);
      const mixed = h(['network', 'connect', 'back', 'p']);
      assert.equal(mixed.status, 125);
      assert.match(mixed.stderr, /cannot be combined with a user network/);
    } finally {
      ok(['rm', '-f', 'both', 'p']);
      ok(['network', 'rm', 'front', 'back']);
    }
  });

  it("a container's /sys shows its own network: /sys/class/net lists the links `ip link` does", () => {
    // Names as /sys/class/net and as `ip -o link` (eth0@if12 is eth0) give them, sorted, one line each.
    const probe = [
      'sh',
      '-c',
      'ls /sys/class/net | sort | tr "\\n" " "; echo; ip -o link | cut -d: -f2 | cut -d@ -f1 | tr -d " " | sort | tr "\\n" " "; echo',
    ];
    const hostLinks = readFileSync('/proc/net/dev', 'utf8')
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0]!.trim())
      .filter((n) => n !== '' && n !== 'lo' && n !== 'eth0');
    ok(['network', 'create', 'sysnet']);
    try {
      for (const net of ['sysnet', 'pasta']) {
        const [sys, ip] = ok(['run', '--rm', '--network', net, img(), ...probe]).split('\n');
        assert.equal(sys, ip, `--network ${net}: /sys/class/net is not the container's own`);
        assert.match(sys!, /\beth0\b/);
        for (const n of hostLinks) assert.doesNotMatch(sys!, new RegExp(`\\b${n}\\b`), `host link ${n} seen`);
      }
      // A user namespace of its own does not own hutch's network namespace: the host's /sys, and it still runs.
      const keepId = h([
        'run',
        '--rm',
        '--userns',
        'keep-id',
        '--network',
        'sysnet',
        img(),
        'ls',
        '/sys/class/net',
      ]);
      assert.equal(keepId.status, 0, keepId.stderr);
    } finally {
      ok(['network', 'rm', 'sysnet']);
    }
  });

  it('names keep resolving after the name server is killed and started again', async () => {
    ok(['network', 'create', 'dns']);
    ok(['run', '-d', '--name', 'db', '--network', 'dns', img(), ...HTTPD]);
    try {
      const pidFile = join(box.runroot, 'netns', 'infra-dns.pid');
      const pid = Number(readFileSync(pidFile, 'utf8'));
      process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      // system check sees it, and --repair starts it again from its records...
      assert.match(JSON.stringify(box.problems()), /hutch-dns is not running/);
      ok(['system', 'check', '--repair']);
      const again = Number(readFileSync(pidFile, 'utf8'));
      assert.notEqual(again, pid);
      assert.equal(readFileSync(`/proc/${again}/comm`, 'utf8').trim(), 'hutch-dns');
      assert.match(fetchFrom('dns', 'db'), /hello/);
      // ...as does the next change on any network.
      process.kill(again, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      assert.match(fetchFrom('dns', 'db'), /hello/);
    } finally {
      ok(['rm', '-f', 'db']);
      ok(['network', 'rm', 'dns']);
    }
  });

  it(
    'a client on a test host reaches a published port on a user network with its own address',
    { skip: HOSTS ? false : 'no test hosts: the root test setup makes them (npm test as root)' },
    async () => {
      ok(['network', 'create', 'seen']);
      const port = await freePort();
      const cgi =
        'mkdir -p /w/cgi-bin && ' +
        'printf \'#!/bin/sh\\nprintf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\n$REMOTE_ADDR"\\n\' > /w/cgi-bin/ip && ' +
        'chmod +x /w/cgi-bin/ip && exec httpd -f -p 80 -h /w';
      ok(['run', '-d', '--name', 'seenweb', '--network', 'seen', '-p', `${port}:80`, img(), 'sh', '-c', cgi]);
      try {
        for (const host of HOSTS!) {
          const url = `http://${host.hostAddress}:${port}/cgi-bin/ip`;
          let got: { status?: number; body?: string } = {};
          for (let i = 0; i < 50 && got.status !== 200; i++) {
            const { request } = await import('node:http');
            got = await new Promise((resolve) => {
              const req = request(`${host.agent}/get?url=${encodeURIComponent(url)}`, (res) => {
                let body = '';
                res.on('data', (d: Buffer) => (body += d.toString()));
                res.on('end', () => resolve(JSON.parse(body) as { status?: number; body?: string }));
              });
              req.on('error', () => resolve({}));
              req.end();
            });
            if (got.status !== 200) await new Promise((r) => setTimeout(r, 100));
          }
          assert.equal(got.status, 200, JSON.stringify(got));
          assert.equal(got.body!.replace(/^\[(?:::ffff:)?|\]$/g, ''), host.address, `${host.name} seen as`);
        }
      } finally {
        ok(['rm', '-f', 'seenweb']);
        ok(['network', 'rm', 'seen']);
      }
    },
  );

  it('publishes a UDP port of a container on a user network, replies included', async () => {
    ok(['network', 'create', 'udpnet']);
    const port = await freePort();
    ok(udpEchoRun(box.dir, 'echo', port, img(), ['--network', 'udpnet']));
    const sock = createSocket('udp4');
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const timer = setInterval(() => sock.send('over-udp', port, '127.0.0.1'), 200);
        sock.once('message', (m) => {
          clearInterval(timer);
          resolve(m.toString());
        });
        setTimeout(() => {
          clearInterval(timer);
          reject(new Error('no reply in 10 s'));
        }, 10_000);
      });
      assert.equal(reply, 'echo:over-udp');
      assert.match(ok(['logs', 'echo']), /^from 127\.0\.0\.1: over-udp$/m);
    } finally {
      sock.close();
      ok(['rm', '-f', 'echo']);
      ok(['network', 'rm', 'udpnet']);
    }
  });

  it('user_networks_uplink = "slirp4netns": the networks reach the outside and the host through slirp4netns instead of pasta', async () => {
    ok(['network', 'create', 'viaslirp']);
    const config = join(box.dir, 'slirp-uplink.toml');
    writeFileSync(config, '[network]\nuser_networks_uplink = "slirp4netns"\nhost_loopback = true\n');
    const env = { ...box.env, HUTCH_CONFIG: config };
    const server = createServer((s) => s.end('from-the-host\n'));
    server.unref();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const web = await runHutchAsync(
        ['run', '-d', '--name', 'slirpweb', '--network', 'viaslirp', img(), ...HTTPD],
        env,
      );
      assert.equal(web.status, 0, web.stderr);
      assert.ok(networkHelpers(box.runroot).includes('slirp4netns'), networkHelpers(box.runroot).join(' '));
      assert.ok(!networkHelpers(box.runroot).some((n) => n.startsWith('pasta')), 'no pasta');
      const r = await runHutchAsync(
        [
          'run',
          '--rm',
          '--network',
          'viaslirp',
          img(),
          'sh',
          '-c',
          `sleep 2 | timeout 10 nc host.containers.internal ${port}; echo "GET /i.html HTTP/1.0" | timeout 5 nc slirpweb 80`,
        ],
        env,
      );
      assert.match(r.stdout, /^from-the-host$/m, r.stderr);
      assert.match(r.stdout, /hello/, 'names still resolve');
      if (HOSTS) {
        const agent = HOSTS[0]!;
        const ping = `printf 'GET /ping HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc ${agent.address} 7070 | head -c 200`;
        const out = await runHutchAsync(
          ['run', '--rm', '--network', 'viaslirp', img(), 'sh', '-c', ping],
          env,
        );
        assert.match(out.stdout, /200 OK/, out.stderr);
      }
    } finally {
      server.close();
      await runHutchAsync(['rm', '-f', 'slirpweb'], env);
      ok(['network', 'rm', 'viaslirp']);
    }
    assert.deepEqual(networkHelpers(box.runroot), [], 'slirp4netns ends with the last container');
  });

  it("reaches the host's loopback as host.containers.internal when hutch.toml opens it to user networks", async () => {
    ok(['network', 'create', 'tohost']);
    const server = createServer((s) => s.end('from-the-host\n'));
    server.unref();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const config = join(box.dir, 'loopback.toml');
    writeFileSync(config, '[network]\nhost_loopback = true\n');
    try {
      const refused = h([
        'run',
        '--rm',
        '--network',
        'tohost',
        '--add-host',
        'h:host-gateway',
        img(),
        'true',
      ]);
      assert.equal(refused.status, 125);
      assert.match(refused.stderr, /needs the host's loopback opened to user networks/);
      // This process serves the connection: hutch must not block its event loop.
      const r = await runHutchAsync(
        [
          'run',
          '--rm',
          '--network',
          'tohost',
          img(),
          'sh',
          '-c',
          `sleep 2 | timeout 10 nc host.containers.internal ${port}`,
        ],
        { ...box.env, HUTCH_CONFIG: config },
      );
      assert.equal(r.stdout, 'from-the-host\n', r.stderr);
    } finally {
      server.close();
      ok(['network', 'rm', 'tohost']);
    }
  });

  it('publishes a port of a container on a user network, with --publish-allow', async () => {
    ok(['network', 'create', 'pub']);
    const port = await freePort();
    ok([
      'run',
      '-d',
      '--name',
      'pubweb',
      '--network',
      'pub',
      '-p',
      `127.0.0.1:${port}:80`,
      '--publish-allow',
      '127.0.0.2/32',
      img(),
      ...HTTPD,
    ]);
    try {
      const get = async (from: string): Promise<string> => {
        const { request } = await import('node:http');
        return new Promise((resolve, reject) => {
          const req = request(
            `http://127.0.0.1:${port}/i.html`,
            { localAddress: from, timeout: 3000 },
            (res) => {
              let body = '';
              res.on('data', (d: Buffer) => (body += d.toString()));
              res.on('end', () => resolve(body));
            },
          );
          req.on('error', reject);
          req.end();
        });
      };
      let body = '';
      for (let i = 0; i < 50 && body === ''; i++) {
        body = await get('127.0.0.2').catch(() => '');
        if (body === '') await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(body, 'hello\n');
      await assert.rejects(get('127.0.0.3'));
      assert.equal(ok(['port', 'pubweb']), `80/tcp -> 127.0.0.1:${port}\n`);
    } finally {
      ok(['rm', '-f', 'pubweb']);
      ok(['network', 'rm', 'pub']);
    }
    assert.deepEqual(helpers(), []);
  });
});
