/** Networking test helpers shared by the rootless network tests. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT } from './hutch.ts';

/** A static program from test/fixtures/net/NAME.c built into dir: the test images have no such tools. */
export function netFixture(dir: string, name: 'udp-echo' | 'icmp-ping'): string {
  const out = join(dir, name);
  const src = join(PROJECT, `test/fixtures/net/${name}.c`);
  const r = spawnSync('cc', ['-static', '-O2', '-o', out, src], { encoding: 'utf8' });
  assert.equal(r.status, 0, `building ${src}: ${r.stderr}`);
  return out;
}

/** A static UDP echo server (test/fixtures/net/udp-echo.c). */
export function udpEcho(dir: string): string {
  return netFixture(dir, 'udp-echo');
}

/** `run -d` of the UDP echo server on container port 9999, published on 127.0.0.1:port. */
export function udpEchoRun(
  dir: string,
  name: string,
  port: number,
  image: string,
  flags: string[] = [],
): string[] {
  const echo = udpEcho(dir);
  return [
    'run',
    '-d',
    '--name',
    name,
    ...flags,
    '-v',
    `${echo}:/udp-echo:ro`,
    '-p',
    `127.0.0.1:${port}:9999/udp`,
    image,
    '/udp-echo',
    '9999',
  ];
}

/** The live processes (by name, sorted) whose command line names a file of RUNROOT/netns: pasta, slirp4netns, hutch-dns, hutch-portfwd. */
export function networkHelpers(runroot: string): string[] {
  const dir = join(runroot, 'netns');
  const out: string[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (/\) [ZX] /.test(readFileSync(`/proc/${p}/stat`, 'utf8'))) continue;
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir))
        out.push(readFileSync(`/proc/${p}/comm`, 'utf8').trim());
    } catch {
      // Ended meanwhile.
    }
  }
  return out.sort();
}

/** What RUNROOT/netns holds, but the lock files that may stay. */
export function netnsFiles(runroot: string): string[] {
  try {
    return readdirSync(join(runroot, 'netns')).filter((n) => !n.endsWith('.lock'));
  } catch {
    return [];
  }
}
