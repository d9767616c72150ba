/**
 * Storage: what a container's root costs with each driver, whatever the
 * image's size. hutch against itself: a container from a 1 GiB image (the
 * "hutch" row) and from a 10 MiB one (the "peer" row), `run --rm --network
 * none IMAGE true` each, on one driver per scenario. Target: the big image
 * at most 1.5x the small one on overlay, btrfs and zfs (no data is copied);
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
 *
 * The zfs scenario runs as root (the zfs driver is rootful) with its layers
 * in a child dataset, made for the run and destroyed after it, of
 * HUTCH_BENCH_ZFS, else HUTCH_TEST_ZFS, else the test setup's zfs-fuse
 * pool (hutchtest/hutch); without one, it fails saying so. The 1 GiB of
 * zeros costs the pool nothing with compression on (ZFS stores no block of
 * zeros), and its tree is still 1 GiB to anything that would copy it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CmdSpec, Scenario, ScenarioContext } from '../types.ts';

const BTRFS = '/mnt/hutch-test-btrfs';

type Driver = 'overlay' | 'vfs' | 'btrfs' | 'zfs';

/** The parent of the zfs scenario's dataset, and the dataset itself (one per run). */
const ZFS_PARENT = process.env.HUTCH_BENCH_ZFS || process.env.HUTCH_TEST_ZFS || 'hutchtest/hutch';
const ZFS_DATASET = `${ZFS_PARENT}/bench-${process.pid}`;

function zfsTool(args: string[]): { ok: boolean; why: string } {
  const r = spawnSync('zfs', args, { encoding: 'utf8' });
  return { ok: r.status === 0, why: (r.stderr || r.error?.message || '').trim() };
}

/** The store's own root for the btrfs scenario, the dataset for the zfs one; the harness's otherwise. */
function rootFor(driver: Driver): Record<string, string> {
  if (driver === 'zfs') return { HUTCH_ZFS_DATASET: ZFS_DATASET };
  if (driver !== 'btrfs') return {};
  return { HUTCH_ROOT: join(BTRFS, String(process.getuid!()), `bench-${process.pid}`) };
}

/** Makes the zfs scenario's dataset, or says why it cannot. */
function prepareZfs(): void {
  if (process.getuid!() !== 0) throw new Error('the zfs driver is rootful: run the bench as root');
  if (!zfsTool(['list', '-H', '-o', 'name', ZFS_PARENT]).ok) {
    throw new Error(
      `no ZFS dataset ${ZFS_PARENT} (set HUTCH_BENCH_ZFS, or run npm test as root, which makes a zfs-fuse pool)`,
    );
  }
  const made = zfsTool(['create', '-o', 'mountpoint=none', ZFS_DATASET]);
  if (!made.ok) throw new Error(`zfs create ${ZFS_DATASET}: ${made.why}`);
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
    ...(driver === 'zfs' ? { rootful: true } : {}),
    setup: (ctx) => {
      if (driver === 'btrfs' && !existsSync(join(BTRFS, String(process.getuid!())))) {
        throw new Error(`no loop-device btrfs for this user at ${BTRFS} (npm test as root makes it)`);
      }
      if (driver === 'zfs') prepareZfs();
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
      if (driver === 'btrfs' || driver === 'zfs')
        ctx.run({ argv: ['hutch', 'system', 'reset', '-f'], env: { ...env, ...rootFor(driver) } });
      // reset keeps the parent dataset (an administrator's): this one was the run's own.
      if (driver === 'zfs') zfsTool(['destroy', '-r', ZFS_DATASET]);
    },
    hutch: run('bench/big:1'),
    peer: run('bench/small:1'),
    ...(ratioMax !== undefined ? { target: { metric: 'time' as const, ratioMax } } : {}),
  };
}

export const storage: Scenario[] = [
  rootCost('overlay', 1.5),
  rootCost('btrfs', 1.5),
  rootCost('zfs', 1.5),
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
