/**
 * Networking as root: the default is the default bridge network (`hutch`,
 * 10.88.0.0/16, shown as NetworkMode "bridge"), whose namespace reaches the
 * outside through a veth pair and the kernel's NAT, with no user-mode
 * helper in the path. Checked against a real test host in its own network
 * namespace (test/setup/testhosts.ts), from the host's side: its links and
 * nftables tables, and what the test host sees.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { testHosts } from '../../setup/testhosts.ts';
import { sandbox } from '../../support/hutch.ts';
import type { Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const HOSTS = testHosts();
const skip = process.getuid!() !== 0 ? 'runs as root only' : NEEDS_REGISTRY;

/** hutch's links on the host (the user networks' namespaces' ends) and its nftables tables there. */
function hostSide(): { links: string[]; tables: string[] } {
  const links = readdirSync('/sys/class/net').filter((n) => /^hutch[0-9a-f]{8}$/.test(n));
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => / hutch_hutch[0-9a-f]{8}$/.test(l));
  return { links, tables };
}

/** A TCP server in the test host's namespace that answers every client with the address it came from. */
async function whoSeesMe(host: string, address: string): Promise<{ port: number; proc: ChildProcess }> {
  const port = 7100 + Math.floor(Math.random() * 800);
  const script = `require('net').createServer((s) => s.end(s.remoteAddress.replace(/^::ffff:/, '') + '\\n')).listen(${port}, '${address}', () => console.log('ready'))`;
  const proc = spawn('ip', ['netns', 'exec', host, process.execPath, '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(proc.stdout!, 'data');
  return { port, proc };
}

describe('networking as root', { skip }, () => {
  let box: Sandbox;
  const img = (): string => `${REGISTRY}/busybox:latest`;
  const ok = (args: string[]): string => {
    const r = box.hutch(args);
    assert.equal(r.status, 0, `hutch ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(() => {
    box = sandbox();
    ok(['pull', '-q', img()]);
  });
  after(() => box.cleanup());

  it('runs on the default bridge network by default, and takes nothing of the host but its link', () => {
    const before = hostSide();
    ok(['run', '-d', '--name', 'first', img(), 'sleep', '300']);
    try {
      assert.equal(ok(['inspect', '--format', '{{.HostConfig.NetworkMode}}', 'first']).trim(), 'bridge');
      const ip = ok(['inspect', '--format', '{{.NetworkSettings.Networks.hutch.IPAddress}}', 'first']).trim();
      assert.match(ip, /^10\.88\.\d+\.\d+$/);
      assert.match(ok(['network', 'ls', '--format', '{{.Name}}']), /^hutch$/m);
      const during = hostSide();
      assert.equal(during.links.length, before.links.length + 1, 'one link to the host');
      assert.equal(during.tables.length, before.tables.length + 1, 'one table of its own');
      // The networks' own bridges stay in their namespace: the host has no route to 10.88.0.0/16.
      assert.doesNotMatch(execFileSync('ip', ['-4', 'route'], { encoding: 'utf8' }), /^10\.88\./m);
      // Names resolve among containers of the default network.
      const out = ok([
        'run',
        '--rm',
        img(),
        'sh',
        '-c',
        'ping -c1 -W2 first >/dev/null 2>&1; nslookup first',
      ]);
      assert.match(out, new RegExp(ip.replace(/\./g, '\\.')));
    } finally {
      ok(['rm', '-f', 'first']);
    }
    assert.deepEqual(hostSide(), before, 'the last container takes the link and the table along');
    assert.deepEqual(box.problems(), []);
  });

  it(
    'reaches a test host through the kernel NAT: seen with the host address',
    { skip: !HOSTS && 'no test hosts' },
    async () => {
      const th = HOSTS![0]!;
      const { port, proc } = await whoSeesMe(th.name, th.address);
      try {
        const seen = ok(['run', '--rm', img(), 'sh', '-c', `nc ${th.address} ${port} </dev/null`]).trim();
        assert.equal(seen, th.hostAddress);
      } finally {
        proc.kill();
      }
    },
  );

  it(
    'publishes a port to the host and to a test host, the client keeping its address',
    { skip: !HOSTS && 'no test hosts' },
    async () => {
      const th = HOSTS![0]!;
      const port = 18600 + Math.floor(Math.random() * 300);
      const serve = `mkdir -p /w/cgi-bin && printf '#!/bin/sh\\nprintf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\n$REMOTE_ADDR"\\n' > /w/cgi-bin/ip && chmod +x /w/cgi-bin/ip && exec httpd -f -p 80 -h /w`;
      ok(['run', '-d', '--name', 'pub', '-p', `${port}:80`, img(), 'sh', '-c', serve]);
      const id = ok(['inspect', '--format', '{{.Id}}', 'pub']).trim().slice(0, 12);
      try {
        const get = `printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | busybox nc ${th.hostAddress} ${port} | tail -1`;
        let seen = '';
        for (let i = 0; i < 50 && !seen.includes(th.address); i++) {
          seen = execFileSync('ip', ['netns', 'exec', th.name, 'sh', '-c', get], { encoding: 'utf8' });
          if (!seen.includes(th.address)) await new Promise((r) => setTimeout(r, 100));
        }
        assert.match(seen, new RegExp(th.address.replace(/\./g, '\\.')));
        // The kernel carries it (DNAT): hutch-portfwd listens only where the kernel cannot route, loopback and IPv6.
        const listeners = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
        assert.deepEqual(
          listeners
            .trim()
            .split('\n')
            .map((l) => l.trim().split(/\s+/)[3])
            .sort(),
          [`127.0.0.1:${port}`, `[::]:${port}`],
        );
        assert.match(
          execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }),
          new RegExp(`hutch_p_${id}`),
        );
      } finally {
        ok(['rm', '-f', 'pub']);
      }
      assert.doesNotMatch(
        execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }),
        new RegExp(`hutch_p_${id}`),
      );
    },
  );

  it(
    '--publish-allow admits the allowed test host and refuses the other, through the kernel',
    { skip: (!HOSTS || HOSTS.length < 2) && 'needs two test hosts' },
    () => {
      const [one, two] = [HOSTS![0]!, HOSTS![1]!];
      const port = 18600 + Math.floor(Math.random() * 300);
      const httpd = 'mkdir -p /w && echo hello > /w/i && exec httpd -f -p 80 -h /w';
      ok([
        'run',
        '-d',
        '--name',
        'allow',
        '-p',
        `${port}:80`,
        '--publish-allow',
        `${one.address}/32`,
        img(),
        'sh',
        '-c',
        httpd,
      ]);
      try {
        const get = (th: typeof one): string =>
          execFileSync(
            'ip',
            [
              'netns',
              'exec',
              th.name,
              'sh',
              '-c',
              `printf 'GET /i HTTP/1.0\\r\\n\\r\\n' | timeout 3 busybox nc ${th.hostAddress} ${port} 2>&1; true`,
            ],
            { encoding: 'utf8' },
          );
        let first = '';
        for (let i = 0; i < 30 && !first.includes('hello'); i++) first = get(one);
        assert.match(first, /hello/);
        assert.doesNotMatch(get(two), /hello/);
      } finally {
        ok(['rm', '-f', 'allow']);
      }
    },
  );
});
