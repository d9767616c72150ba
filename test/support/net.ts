/** Networking test helpers shared by the rootless network tests. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT } from './hutch.ts';

/** A static UDP echo server (test/fixtures/net/udp-echo.c) built into dir: the test images have none. */
export function udpEcho(dir: string): string {
  const out = join(dir, 'udp-echo');
  const src = join(PROJECT, 'test/fixtures/net/udp-echo.c');
  const r = spawnSync('cc', ['-static', '-O2', '-o', out, src], { encoding: 'utf8' });
  assert.equal(r.status, 0, `building ${src}: ${r.stderr}`);
  return out;
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
