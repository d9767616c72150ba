/**
 * Storage: what a container's root costs with each driver, whatever the
 * image's size. hutch against itself: a container from a 1 GiB image (the
 * "hutch" row) and from a 10 MiB one (the "peer" row), `run --rm --network
 * none IMAGE true` each, on one driver per scenario. Target: the big image
 * at most 1.5x the small one on overlay and btrfs (no data is copied);
 * vfs is reported beside them, with no target, for its linear cost (a full
 * copy per container).
 *
 * The images are made in setup, imported from root filesystem tarballs:
 * busybox, and a file of zeros of 9 MiB or 1 GiB (zeros compress fast, so
 * the import is quick; the layer on disk still has its full size).
 *
 * The btrfs scenario puts its store on the loop-device btrfs the test
 * setup makes (/mnt/hutch-test-btrfs/UID, mounted with
 * user_subvol_rm_allowed); without it, the scenario fails saying so.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CmdSpec, Scenario, ScenarioContext } from '../types.ts';

const BTRFS = '/mnt/hutch-test-btrfs';

type Driver = 'overlay' | 'vfs' | 'btrfs';

/** The store's own root for the btrfs scenario; the harness's otherwise. */
function rootFor(driver: Driver): Record<string, string> {
  if (driver !== 'btrfs') return {};
  return { HUTCH_ROOT: join(BTRFS, String(process.getuid!()), `bench-${process.pid}`) };
}

function imageTar(ctx: ScenarioContext, name: string, mib: number): string {
  const dir = join(ctx.dir, name);
  const tar = `${dir}.tar`;
  ctx.run([
    'sh',
    '-c',
    `mkdir -p ${dir}/bin && cp /bin/busybox ${dir}/bin/ && ln -sf busybox ${dir}/bin/true && ` +
      `head -c ${mib * 1024 * 1024} /dev/zero > ${dir}/data.bin && tar -C ${dir} -cf ${tar} . && rm -rf ${dir}`,
  ]);
  return tar;
}

function rootCost(driver: Driver, ratioMax: number | undefined): Scenario {
  const env = { HUTCH_STORAGE_DRIVER: driver };
  const run = (image: string): CmdSpec => ({
    argv: ['hutch', 'run', '--rm', '--network', 'none', image, '/bin/true'],
    env: { ...env, ...rootFor(driver) },
  });
  return {
    name: `root-1g-${driver}`,
    description: `run --rm of a container from a 1 GiB image against a 10 MiB one, on ${driver}`,
    rounds: 7,
    warmup: 1,
    labels: { hutch: '1 GiB image', peer: '10 MiB image' },
    setup: (ctx) => {
      if (driver === 'btrfs' && !existsSync(join(BTRFS, String(process.getuid!())))) {
        throw new Error(`no loop-device btrfs for this user at ${BTRFS} (npm test as root makes it)`);
      }
      const e = { ...env, ...rootFor(driver) };
      for (const [name, mib] of [
        ['big', 1024],
        ['small', 9],
      ] as const) {
        const tar = imageTar(ctx, name, mib);
        ctx.run({ argv: ['hutch', 'import', tar, `bench/${name}:1`], env: e });
      }
      const got = ctx.run({ argv: ['hutch', 'info', '--format', '{{.Store.GraphDriverName}}'], env: e });
      if (got.stdout.trim() !== driver)
        throw new Error(`the store got the ${got.stdout.trim()} driver, not ${driver}`);
    },
    teardown: (ctx) => {
      if (driver === 'btrfs')
        ctx.run({ argv: ['hutch', 'system', 'reset', '-f'], env: { ...env, ...rootFor(driver) } });
    },
    hutch: run('bench/big:1'),
    peer: run('bench/small:1'),
    ...(ratioMax !== undefined ? { target: { metric: 'time' as const, ratioMax } } : {}),
  };
}

export const storage: Scenario[] = [
  rootCost('overlay', 1.5),
  rootCost('btrfs', 1.5),
  rootCost('vfs', undefined),
];

/**
 * volume-clone-1g: `volume clone V@SNAP NEW` of a 1 GiB volume, on a btrfs
 * store (the "hutch" row: a writable snapshot; the issue asks under 0.1 s)
 * against an overlay store on the machine's own disk (the "peer" row: a
 * copy, reflinked where the filesystem can). Each round's clone is removed
 * before the next, untimed.
 */
function volumeClone(): Scenario {
  const btrfs = { HUTCH_STORAGE_DRIVER: 'btrfs', ...rootFor('btrfs') };
  const plain = { HUTCH_STORAGE_DRIVER: 'overlay' };
  const clone = (env: Record<string, string>): CmdSpec => ({
    argv: ['hutch', 'volume', 'clone', 'big@s', 'copy'],
    env,
  });
  return {
    name: 'volume-clone-1g',
    description: 'volume clone of a 1 GiB volume: btrfs snapshot against a copy on the default disk',
    rounds: 5,
    warmup: 1,
    labels: { hutch: 'btrfs', peer: 'copy (overlay store)' },
    setup: (ctx) => {
      if (!existsSync(join(BTRFS, String(process.getuid!())))) {
        throw new Error(`no loop-device btrfs for this user at ${BTRFS} (npm test as root makes it)`);
      }
      const tar = imageTar(ctx, 'small', 1);
      for (const env of [btrfs, plain]) {
        ctx.run({ argv: ['hutch', 'import', tar, 'bench/small:1'], env });
        ctx.run({ argv: ['hutch', 'volume', 'create', 'big'], env });
        const fill = ['run', '--rm', '--network', 'none', '-v', 'big:/data', 'bench/small:1'];
        ctx.run({
          argv: [
            'hutch',
            ...fill,
            '/bin/busybox',
            'dd',
            'if=/dev/zero',
            'of=/data/zeros',
            'bs=1M',
            'count=1024',
          ],
          env,
        });
        ctx.run({ argv: ['hutch', 'volume', 'snapshot', 'big', 's'], env });
      }
    },
    before_each: (ctx, engine) => {
      // The previous round's clone goes first (untimed): each round makes "copy" anew.
      const env = engine === 'hutch' ? btrfs : plain;
      try {
        ctx.run({ argv: ['hutch', 'volume', 'rm', 'copy'], env });
      } catch {
        // None yet.
      }
    },
    teardown: (ctx) => {
      ctx.run({ argv: ['hutch', 'system', 'reset', '-f'], env: btrfs });
    },
    hutch: clone(btrfs),
    peer: clone(plain),
  };
}

storage.push(volumeClone());
