/**
 * Rootless networking as the unprivileged user, with the real pasta and
 * slirp4netns: the default network, published TCP and UDP ports, -P, port
 * conflicts, the client's own address (from the test hosts the root setup
 * made, test/setup/testhosts.ts), the host's loopback through
 * host.containers.internal, container:NAME, and that nothing is left once a
 * container is gone.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import type { Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { testHosts } from '../../setup/testhosts.ts';
import { runHutchAsync, sandbox } from '../../support/hutch.ts';
import { netFixture, networkHelpers, netnsFiles as netnsListing, udpEchoRun } from '../../support/net.ts';
import type { Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';
import { which } from '../../../src/util/which.ts';

const NO_PASTA = which('pasta') ? false : 'pasta is not installed (Debian: apt install passt)';
const NO_SLIRP = which('slirp4netns') ? false : 'slirp4netns is not installed';
const HOSTS = testHosts();
const NO_HOSTS = HOSTS ? false : 'no test hosts: the root test setup makes them (npm test as root)';

/** A port free on every address now (the kernel's choice). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function until<T>(what: string, get: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await get();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function httpGet(url: string, localAddress?: string): Promise<string> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** busybox httpd serving "hello" at /i.html and the client's address at /cgi-bin/ip. */
const HTTPD = [
  'sh',
  '-c',
  'mkdir -p /w/cgi-bin && echo hello > /w/i.html && ' +
    'printf \'#!/bin/sh\\nprintf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\n$REMOTE_ADDR"\\n\' > /w/cgi-bin/ip && ' +
    'chmod +x /w/cgi-bin/ip && exec httpd -f -p 80 -h /w',
];

/** The client address busybox httpd reports, without the IPv4-in-IPv6 wrapping. */
function clientAddress(body: string): string {
  return body
    .trim()
    .replace(/^\[(?:::ffff:)?/, '')
    .replace(/\]$/, '');
}

describe('rootless networking', { skip: NEEDS_REGISTRY || NO_PASTA }, () => {
  let box: Sandbox;
  const img = (): string => `${REGISTRY}/busybox:latest`;
  const h = (args: string[]) => box.hutch(args);
  const ok = (args: string[]): string => {
    const r = h(args);
    assert.equal(r.status, 0, `hutch ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const helpers = (): string[] => networkHelpers(box.runroot);
  const netnsFiles = (): string[] => netnsListing(box.runroot);

  before(() => {
    box = sandbox();
    ok(['pull', '-q', img()]);
  });
  after(() => box.cleanup());

  it('--network none has only loopback; the default is pasta, with an interface and a resolver', () => {
    assert.equal(
      ok(['run', '--rm', '--network', 'none', img(), 'ip', '-o', 'link'])
        .match(/^\d+: (\w+)/gm)
        ?.join(),
      '1: lo',
    );
    ok(['create', '--name', 'dflt', img(), 'true']);
    assert.equal(ok(['inspect', '--format', '{{.HostConfig.NetworkMode}}', 'dflt']).trim(), 'pasta');
    ok(['rm', 'dflt']);
    const out = ok(['run', '--rm', img(), 'sh', '-c', 'ip -o -4 addr; cat /etc/resolv.conf']);
    assert.match(out, /: (eth|en)\w* +inet \d+\.\d+\.\d+\.\d+\//);
    assert.match(out, /^nameserver \S+$/m);
    assert.deepEqual(helpers(), [], 'run --rm leaves no pasta behind');
  });

  it('-p 127.0.0.1:PORT:80 serves busybox httpd to a client on the host; port, ps and inspect show it', async () => {
    const port = await freePort();
    ok(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:80`, img(), ...HTTPD]);
    try {
      const body = await until('httpd', async () => httpGet(`http://127.0.0.1:${port}/i.html`));
      assert.equal(body, 'hello\n');
      assert.equal(ok(['port', 'web']), `80/tcp -> 127.0.0.1:${port}\n`);
      assert.equal(ok(['port', 'web', '80']), `127.0.0.1:${port}\n`);
      assert.match(
        ok(['ps', '--format', '{{.Ports}}', '--filter', 'name=web']),
        new RegExp(`^127\\.0\\.0\\.1:${port}->80/tcp$`, 'm'),
      );
      const ports = JSON.parse(
        ok(['inspect', '--format', '{{json .NetworkSettings.Ports}}', 'web']),
      ) as unknown;
      assert.deepEqual(ports, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] });
      const bindings = JSON.parse(
        ok(['inspect', '--format', '{{json .HostConfig.PortBindings}}', 'web']),
      ) as unknown;
      assert.deepEqual(bindings, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] });
      assert.equal(helpers().length, 3, 'pasta, hutch-handoff and its keeper');
      assert.equal(netnsFiles().length > 0, true);
    } finally {
      ok(['rm', '-f', 'web']);
    }
    assert.deepEqual(helpers(), [], 'removing the container ends pasta and hutch-handoff');
    assert.deepEqual(netnsFiles(), [], 'and removes its namespace');
    assert.deepEqual(box.problems(), []);
  });

  it("a published TCP port is the container server's own socket on the host: loopback clients keep their address, the container's loopback reaches it", async () => {
    const port = await freePort();
    const port2 = await freePort();
    ok(['run', '-d', '--name', 'handed', '-p', `${port}:80`, '-p', `127.0.0.1:${port2}:81`, img(), ...HTTPD]);
    try {
      await until('httpd', async () => httpGet(`http://127.0.0.1:${port}/i.html`));
      // The listening socket on the host belongs to the container's httpd: no relay in between.
      const listener = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
      assert.match(listener, /"httpd"/, listener);
      const seen = await httpGet(`http://127.0.0.1:${port}/cgi-bin/ip`, '127.0.0.2');
      assert.equal(clientAddress(seen), '127.0.0.2');
      const inside = ok([
        'exec',
        'handed',
        'sh',
        '-c',
        'printf "GET /i.html HTTP/1.0\\r\\n\\r\\n" | nc 127.0.0.1 80',
      ]);
      assert.match(inside, /hello/, 'the container reaches its own published port on its loopback');
      // A port the container binds but did not publish stays in its own namespace.
      ok(['exec', '-d', 'handed', 'httpd', '-p', '8081', '-h', '/w']);
      const own = await until('second httpd', async () => {
        const r = ok([
          'exec',
          'handed',
          'sh',
          '-c',
          'printf "GET /i.html HTTP/1.0\\r\\n\\r\\n" | nc 127.0.0.1 8081',
        ]);
        if (!/hello/.test(r)) throw new Error('not yet');
        return r;
      });
      assert.match(own, /hello/);
      assert.equal(execFileSync('ss', ['-Hltn', 'sport = :8081'], { encoding: 'utf8' }).trim(), '');
      // The sockets it handed over are the container's: killing hutch-handoff loses no published port.
      const handoff = readdirSync('/proc').find((p) => {
        try {
          return (
            /^\d+$/.test(p) &&
            readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'hutch-handoff' &&
            readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(box.runroot)
          );
        } catch {
          return false;
        }
      });
      assert.ok(handoff, 'hutch-handoff runs for the container');
      process.kill(Number(handoff), 'SIGKILL');
      assert.equal(await httpGet(`http://127.0.0.1:${port}/i.html`), 'hello\n');
      // Restartable: system check finds it gone, --repair resumes it from its keeper, and a new bind is handed over.
      const check = h(['system', 'check']);
      assert.match(check.stdout + check.stderr, /hutch-handoff is gone/);
      ok(['system', 'check', '--repair']);
      ok(['exec', '-d', 'handed', 'httpd', '-p', '81', '-h', '/w']);
      const second = await until('httpd on the second port', async () =>
        httpGet(`http://127.0.0.1:${port2}/i.html`),
      );
      assert.equal(second, 'hello\n');
      assert.deepEqual(box.problems(), []);
    } finally {
      ok(['rm', '-f', 'handed']);
    }
    assert.deepEqual(helpers(), []);
    assert.deepEqual(box.problems(), []);
  });

  it('a deep runtime directory still hands published ports over: its sockets are named by the short ID', async () => {
    // 60 bytes before netns/: with the full ID the helper's sockets would not fit in sun_path (107).
    const runroot = `${tmpdir()}/hutch-deep-${process.pid}-`.padEnd(60, 'r');
    mkdirSync(runroot, { recursive: true, mode: 0o700 });
    const deep = sandbox({ HUTCH_RUNROOT: runroot });
    try {
      const run = (args: string[]): string => {
        const r = deep.hutch(args);
        assert.equal(r.status, 0, `hutch ${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      run(['pull', '-q', img()]);
      const port = await freePort();
      run(['run', '-d', '--name', 'deep', '-p', `127.0.0.1:${port}:80`, img(), ...HTTPD]);
      assert.equal(await until('httpd', async () => httpGet(`http://127.0.0.1:${port}/i.html`)), 'hello\n');
      const listener = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
      assert.match(listener, /"httpd"/, `the port is handed over, not relayed: ${listener}`);
      run(['rm', '-f', 'deep']);
      assert.deepEqual(networkHelpers(runroot), []);
      assert.deepEqual(netnsListing(runroot), []);
    } finally {
      deep.cleanup();
      rmSync(runroot, { recursive: true, force: true });
    }
  });

  it('port_handoff = false publishes through pasta alone', async () => {
    const port = await freePort();
    mkdirSync(`${box.dir}/config/hutch`, { recursive: true });
    writeFileSync(`${box.dir}/config/hutch/hutch.toml`, '[network]\nport_handoff = false\n');
    try {
      ok(['run', '-d', '--name', 'relayed', '-p', `127.0.0.1:${port}:80`, img(), ...HTTPD]);
      const body = await until('httpd', async () => httpGet(`http://127.0.0.1:${port}/i.html`));
      assert.equal(body, 'hello\n');
      assert.equal(helpers().length, 1, 'pasta only');
      const listener = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
      assert.doesNotMatch(listener, /"httpd"/);
    } finally {
      rmSync(`${box.dir}/config/hutch/hutch.toml`, { force: true });
      ok(['rm', '-f', 'relayed']);
    }
  });

  it('lets any user in the container ping (ICMP sockets, ping_group_range), unless --sysctl says otherwise', () => {
    const ping = netFixture(box.dir, 'icmp-ping');
    const run = (flags: string[]) =>
      h([
        'run',
        '--rm',
        '--user',
        '1000:1000',
        ...flags,
        '-v',
        `${ping}:/icmp-ping:ro`,
        img(),
        '/icmp-ping',
        '127.0.0.1',
      ]);
    const ok1 = run([]);
    assert.equal(ok1.stdout, 'reply\n', ok1.stderr);
    const none = run(['--network', 'none']);
    assert.equal(none.stdout, 'reply\n', none.stderr);
    const refused = run(['--sysctl', 'net.ipv4.ping_group_range=1 1']);
    assert.equal(refused.stdout, 'socket: Permission denied\n');
  });

  it('publishes a UDP port', async () => {
    const port = await freePort();
    ok(udpEchoRun(box.dir, 'udp', port, img()));
    const sock = createSocket('udp4');
    sock.unref();
    try {
      const got = await until('the datagram in the log', async () => {
        await new Promise<void>((r) => sock.send('ping-over-udp', port, '127.0.0.1', () => r()));
        await new Promise((r) => setTimeout(r, 200));
        const logs = ok(['logs', 'udp']);
        return logs.includes('ping-over-udp') ? logs : undefined;
      });
      assert.match(got, /^from \S+: ping-over-udp$/m);
    } finally {
      sock.close();
      ok(['rm', '-f', 'udp']);
    }
  });

  it('-P publishes the exposed ports on free host ports', async () => {
    ok(['run', '-d', '--name', 'all', '--expose', '80', '-P', img(), ...HTTPD]);
    try {
      const line = ok(['port', 'all', '80/tcp']).trim();
      const m = /^0\.0\.0\.0:(\d+)$/.exec(line);
      assert.ok(m, line);
      const body = await until('httpd', async () => httpGet(`http://127.0.0.1:${m[1]}/i.html`));
      assert.equal(body, 'hello\n');
    } finally {
      ok(['rm', '-f', 'all']);
    }
  });

  it('refuses a host port in use, saying so, and leaves nothing running', async () => {
    const server: Server = createServer((s) => s.destroy());
    server.unref();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const r = h(['run', '-d', '--name', 'clash', '-p', `127.0.0.1:${port}:80`, img(), 'sleep', '100']);
      assert.equal(r.status, 125, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`cannot publish 127\\.0\\.0\\.1:${port}/tcp: the port is already in use`),
      );
      assert.match(r.stderr, /Hint: Choose another host port/);
      assert.equal(ok(['inspect', '--format', '{{.State.Status}}', 'clash']).trim(), 'created');
      assert.deepEqual(helpers(), []);
      assert.deepEqual(netnsFiles(), []);
      ok(['rm', 'clash']);
    } finally {
      server.close();
    }
    const bad = h(['create', '-p', '8080:80/sctp', img()]);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /SCTP/);
  });

  it(
    'refuses a privileged host port with the sysctl that allows it',
    {
      skip:
        Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')) <= 81 &&
        'this host lets users bind port 81',
    },
    () => {
      const r = h(['run', '--rm', '-p', '81:80', img(), 'true']);
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, /ports below \d+ need root \(net\.ipv4\.ip_unprivileged_port_start=\d+\)/);
      assert.match(r.stderr, /Hint: Use a host port of \d+ or above/);
    },
  );

  it(
    "a client on a test host is seen with the test host's own address (pasta)",
    { skip: NO_HOSTS },
    async () => {
      const port = await freePort();
      ok(['run', '-d', '--name', 'src', '-p', `${port}:80`, img(), ...HTTPD]);
      try {
        for (const host of HOSTS!) {
          const url = `http://${host.hostAddress}:${port}/cgi-bin/ip`;
          const res = await until(`a reply through ${host.name}`, async () => {
            const r = JSON.parse(await httpGet(`${host.agent}/get?url=${encodeURIComponent(url)}`)) as {
              status?: number;
              body?: string;
            };
            return r.status === 200 ? r : undefined;
          });
          assert.equal(clientAddress(res.body!), host.address, `${host.name} seen as`);
        }
      } finally {
        ok(['rm', '-f', 'src']);
      }
    },
  );

  it('--publish-allow admits a loopback client from an allowed address and refuses another', async () => {
    const port = await freePort();
    ok([
      'run',
      '-d',
      '--name',
      'allow',
      '--publish-allow',
      '127.0.0.2/32',
      '-p',
      `127.0.0.1:${port}:80`,
      img(),
      ...HTTPD,
    ]);
    try {
      const seen = await until('httpd through hutch-portfwd', async () =>
        httpGet(`http://127.0.0.1:${port}/cgi-bin/ip`, '127.0.0.2'),
      );
      assert.equal(clientAddress(seen), '127.0.0.2', 'the container sees the allowed client itself');
      await assert.rejects(
        httpGet(`http://127.0.0.1:${port}/cgi-bin/ip`, '127.0.0.3'),
        /ECONNRESET|socket hang up|ECONNREFUSED/,
      );
      assert.deepEqual(
        JSON.parse(ok(['inspect', '--format', '{{json .HostConfig.PublishAllow}}', 'allow'])),
        ['127.0.0.2/32'],
      );
      assert.equal(helpers().length, 2, 'pasta and hutch-portfwd');
    } finally {
      ok(['rm', '-f', 'allow']);
    }
    assert.deepEqual(helpers(), [], 'removing the container ends pasta and hutch-portfwd');
    assert.deepEqual(box.problems(), []);
  });

  it(
    '--publish-allow with a test host allowed: it connects, the other test host is refused',
    { skip: NO_HOSTS },
    async () => {
      const [allowed, other] = HOSTS!;
      const port = await freePort();
      ok([
        'run',
        '-d',
        '--name',
        'allow2',
        '--publish-allow',
        allowed!.address,
        '-p',
        `${allowed!.hostAddress}:${port}:80`,
        img(),
        ...HTTPD,
      ]);
      try {
        const url = `http://${allowed!.hostAddress}:${port}/cgi-bin/ip`;
        const via = async (h: typeof allowed): Promise<{ status?: number; body?: string; error?: string }> =>
          JSON.parse(await httpGet(`${h!.agent}/get?url=${encodeURIComponent(url)}`)) as {
            status?: number;
            body?: string;
            error?: string;
          };
        const res = await until('a reply to the allowed test host', async () => {
          const r = await via(allowed);
          return r.status === 200 ? r : undefined;
        });
        assert.equal(clientAddress(res.body!), allowed!.address);
        const refused = await via(other);
        assert.equal(refused.status, undefined, `the other test host got ${JSON.stringify(refused)}`);
        assert.match(refused.error ?? '', /ECONNRESET|ECONNREFUSED|closed|socket hang up/);
      } finally {
        ok(['rm', '-f', 'allow2']);
      }
    },
  );

  it('--publish-allow is refused where it cannot be enforced', () => {
    const cases: [string[], RegExp][] = [
      [
        ['--network', 'slirp4netns', '-p', '8080:80', '--publish-allow', '10.0.0.0/8'],
        /needs --network pasta.*\n.*cannot be told apart/,
      ],
      [['--publish-allow', '10.0.0.0/8'], /without a published port/],
      [['-p', '8080:80', '--publish-allow', '10.0.0.0/33'], /not an IPv4 or IPv6 network/],
    ];
    for (const [flags, why] of cases) {
      const r = h(['create', ...flags, img()]);
      assert.equal(r.status, 125, flags.join(' '));
      assert.match(r.stderr, why);
    }
  });

  it("reaches a server on the host's loopback as host.containers.internal only when allowed", async () => {
    const server = createServer((s) => s.end('from-the-host\n'));
    server.unref();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      // This process serves the connection: hutch must not block its event loop.
      const allowed = await runHutchAsync(
        [
          'run',
          '--rm',
          '--add-host',
          'host.containers.internal:host-gateway',
          img(),
          'sh',
          '-c',
          // stdin stays open until the server has spoken: this pasta can lose a reply that crosses an early FIN.
          `sleep 2 | timeout 10 nc host.containers.internal ${port}`,
        ],
        box.env,
      );
      assert.equal(allowed.stdout, 'from-the-host\n', allowed.stderr);
      const refused = await runHutchAsync(
        ['run', '--rm', img(), 'sh', '-c', `nc -w 2 host.containers.internal ${port} </dev/null`],
        box.env,
      );
      assert.notEqual(refused.status, 0, 'without permission the name is not there');
      assert.match(refused.stderr, /bad address 'host\.containers\.internal'/);
    } finally {
      server.close();
    }
  });

  it('container:NAME shares the network of another container', async () => {
    ok(['run', '-d', '--name', 'first', img(), ...HTTPD]);
    try {
      const out = await until('httpd in first', async () => {
        const r = h([
          'run',
          '--rm',
          '--network',
          'container:first',
          img(),
          'sh',
          '-c',
          'echo "GET /i.html HTTP/1.0" | nc -w 3 127.0.0.1 80',
        ]);
        return r.stdout.includes('hello') ? r.stdout : undefined;
      });
      assert.match(out, /hello/);
      const r = h(['create', '--network', 'container:first', '-p', '8080:80', img()]);
      assert.equal(r.status, 125);
      assert.match(r.stderr, /uses another's network/);
    } finally {
      ok(['rm', '-f', 'first']);
    }
  });

  it('slirp4netns: its own addresses and resolver, and a published port', { skip: NO_SLIRP }, async () => {
    const port = await freePort();
    ok([
      'run',
      '-d',
      '--name',
      'slirp',
      '--network',
      'slirp4netns',
      '-p',
      `127.0.0.1:${port}:80`,
      img(),
      ...HTTPD,
    ]);
    try {
      assert.equal(ok(['inspect', '--format', '{{.HostConfig.NetworkMode}}', 'slirp']).trim(), 'slirp4netns');
      assert.match(ok(['exec', 'slirp', 'ip', '-o', '-4', 'addr', 'show', 'tap0']), /inet 10\.0\.2\.100\/24/);
      const body = await until('httpd', async () => httpGet(`http://127.0.0.1:${port}/i.html`));
      assert.equal(body, 'hello\n');
    } finally {
      ok(['rm', '-f', 'slirp']);
    }
    assert.deepEqual(helpers(), []);
    assert.deepEqual(netnsFiles(), []);
  });
});
