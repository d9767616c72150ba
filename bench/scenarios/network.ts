/**
 * Networking, hutch against podman, each with its own default rootless
 * network (hutch: pasta; Debian's podman 4.3: slirp4netns with rootlessport
 * publishing ports):
 *
 * - publish-throughput: one download of a 512 MiB file from busybox httpd in
 *   a container, through a port published on 127.0.0.1, by curl on the host
 *   (Gbit/s from curl's own count). Target: hutch at least podman. The
 *   containers are started once, in setup; every round is one download.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Scenario, ScenarioContext } from '../types.ts';
import { hutch, image, podman, pullBoth, removeAll } from './containers.ts';

const PORTS = { hutch: 18401, podman: 18402 };
const SIZE_MB = 512;

const SERVE = [
  'sh',
  '-c',
  `mkdir -p /w && dd if=/dev/zero of=/w/big bs=1M count=${SIZE_MB} 2>/dev/null && exec httpd -f -p 80 -h /w`,
];

const download = (port: number): { argv: string[]; capture: boolean } => ({
  argv: [
    'curl',
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{size_download} %{speed_download}\n',
    `http://127.0.0.1:${port}/big`,
  ],
  capture: true,
});

/** Waits until the file is served whole; throws (failing the scenario) after a minute. */
async function served(ctx: ScenarioContext, port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const [size] = ctx.run(download(port)).stdout.trim().split(' ');
      if (Number(size) === SIZE_MB * 1024 * 1024) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`nothing served the file on port ${port}`);
    await sleep(250);
  }
}

function publishThroughput(): Scenario {
  return {
    name: 'publish-throughput',
    description: `download ${SIZE_MB} MiB through a published port on 127.0.0.1 (default rootless network of each engine)`,
    rounds: 7,
    warmup: 1,
    registry: true,
    setup: async (ctx) => {
      pullBoth(ctx);
      ctx.run(hutch('run', '-d', '-p', `127.0.0.1:${PORTS.hutch}:80`, image(), ...SERVE));
      ctx.run(podman('run', '-d', '-p', `127.0.0.1:${PORTS.podman}:80`, image(), ...SERVE));
      await served(ctx, PORTS.hutch);
      await served(ctx, PORTS.podman);
    },
    teardown: removeAll,
    hutch: download(PORTS.hutch),
    peer: download(PORTS.podman),
    measure: (s) => {
      const [size, speed] = s.stdout.trim().split(' ').map(Number);
      if (size !== SIZE_MB * 1024 * 1024)
        throw new Error(`${s.engine}: downloaded ${size} bytes: ${s.stderr}`);
      return ((speed ?? 0) * 8) / 1e9;
    },
    target: { metric: 'throughput', ratioMin: 1 },
  };
}

export const network: Scenario[] = [publishThroughput()];
