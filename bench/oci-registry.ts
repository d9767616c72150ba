/**
 * The loopback registry the pull and container scenarios read from: the test setup's own
 * (test/setup/images-cli.ts: Debian's docker-registry with the locally made
 * images), started here as root before the harness moves to the test user,
 * and stopped by its pid at the end.
 */
import { spawnSync } from 'node:child_process';

// Not 5060/5061: fetch refuses those (SIP) ports by the Fetch standard's bad-port list.
export const BENCH_REGISTRY_PORT = '5070';
const DATA = '/var/tmp/hutch-bench-registry';

/** The address of the registry the harness started (for scenarios marked `registry: true`). */
export function benchRegistry(): string {
  const r = process.env.HUTCH_BENCH_REGISTRY;
  if (!r) {
    throw new Error(
      'this scenario needs HUTCH_BENCH_REGISTRY (npm run bench as root starts the loopback registry)',
    );
  }
  return r;
}

export function startBenchRegistry(repo: string, node: string): string {
  const r = spawnSync(
    node,
    [
      'test/setup/images-cli.ts',
      '--cache',
      '/var/cache/hutch-test',
      '--data',
      DATA,
      '--port',
      BENCH_REGISTRY_PORT,
    ],
    { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (r.status !== 0) throw new Error('bench: starting the loopback registry with the test images failed');
  return `127.0.0.1:${BENCH_REGISTRY_PORT}`;
}

export function stopBenchRegistry(repo: string, node: string): void {
  spawnSync(node, ['test/setup/images-cli.ts', '--data', DATA, '--stop'], { cwd: repo, stdio: 'ignore' });
}
