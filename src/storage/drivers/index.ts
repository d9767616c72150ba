/**
 * Choosing and opening the storage driver. A store keeps the driver it was
 * created with (store.json); opening it with another is refused with the way
 * out, since layers of one driver mean nothing to another.
 */
import {
  existsSync,
  mkdtempSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { helperPath } from '../../sys/native-paths.ts';
import { HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import type { LayerDriver } from '../types.ts';
import { BtrfsDriver } from './btrfs.ts';
import { probeBtrfs } from './btrfs-probe.ts';
import { onBtrfs } from './btrfs-tool.ts';
import { chooseAutomatically } from './choice.ts';
import { FuseOverlayDriver } from './fuse-overlayfs.ts';
import { probeFuseOverlayfs } from './fuse-overlayfs-probe.ts';
import { OverlayDriver } from './overlay.ts';
import { VfsDriver } from './vfs.ts';
import { ZfsDriver } from './zfs.ts';
import { probeZfs, storeDataset } from './zfs-probe.ts';

export const DRIVERS = ['overlay', 'vfs', 'btrfs', 'fuse-overlayfs', 'zfs'] as const;
export type DriverName = (typeof DRIVERS)[number];

export function isDriverName(s: string): s is DriverName {
  return (DRIVERS as readonly string[]).includes(s);
}

/**
 * Where a passed overlay probe is remembered until reboot: by the store's
 * filesystem (device and type) and the mount options asked for. Only a pass
 * is kept, so a kernel module or a filesystem fixed since is noticed at once.
 */
function overlayProbeMark(probeDir: string, storeRoot: string, rootless: boolean): string {
  const { dev } = statSync(storeRoot);
  const { type } = statfsSync(storeRoot);
  return join(probeDir, `overlay-${dev}-${type.toString(16)}-${rootless ? 'userxattr' : 'plain'}`);
}

/**
 * A real overlay mount in a scratch directory of the store: the only test
 * that tells. With `probeDir` (a directory of the runtime root, emptied at
 * boot), a pass for the same filesystem is taken from there: the probe
 * spawns a process and mounts, about 10 ms of every first pull into a new store.
 */
export function overlayWorks(
  storeRoot: string,
  rootless: boolean,
  probeDir?: string,
  probe: (storeRoot: string, rootless: boolean) => boolean = probeOverlay,
): boolean {
  mkdirSync(storeRoot, { recursive: true, mode: 0o700 });
  const mark = probeDir === undefined ? undefined : overlayProbeMark(probeDir, storeRoot, rootless);
  if (mark !== undefined && existsSync(mark)) return true;
  const works = probe(storeRoot, rootless);
  if (works && mark !== undefined) {
    try {
      mkdirSync(probeDir!, { recursive: true, mode: 0o700 });
      writeFileSync(mark, '');
    } catch {
      // Not remembered: the next new store probes again.
    }
  }
  return works;
}

function probeOverlay(storeRoot: string, rootless: boolean): boolean {
  const dir = mkdtempSync(join(storeRoot, '.tmp-overlay-probe-'));
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, d));
    const { spawnSync } = process.getBuiltinModule('node:child_process');
    const args = ['probe-overlay', dir, ...(rootless ? ['userxattr'] : [])];
    return spawnSync(helperPath(), args, { stdio: 'ignore' }).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** statfs(2)'s f_type for OpenZFS. */
export const ZFS_MAGIC = 0x2fc12fc1;

/** The OpenZFS version when `path` is on ZFS ('' when the module does not say); undefined off ZFS. */
export function zfsVersionAt(path: string): string | undefined {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  try {
    if (statfsSync(p).type !== ZFS_MAGIC) return undefined;
  } catch {
    return undefined;
  }
  try {
    return readFileSync('/sys/module/zfs/version', 'utf8').trim();
  } catch {
    return '';
  }
}

/** What opening or choosing a driver needs beside the store's path. */
export interface DriverOptions {
  rootless: boolean;
  /** `[storage] zfs_dataset` (or HUTCH_ZFS_DATASET): the zfs driver's parent dataset. */
  zfsDataset?: string | undefined;
  /** Where probes that passed are remembered until reboot (under the runtime root). */
  probeDir?: string | undefined;
}

const UNUSABLE_CODE: Partial<Record<DriverName, string>> = {
  btrfs: 'BTRFS_UNUSABLE',
  'fuse-overlayfs': 'FUSE_OVERLAYFS_UNUSABLE',
  zfs: 'ZFS_UNUSABLE',
};

/** A driver asked for where it cannot work: the reason and the fix, before anything is written. */
function refuseUnusable(requested: DriverName, storeRoot: string, opts: DriverOptions): void {
  const { rootless } = opts;
  const probe =
    requested === 'btrfs'
      ? probeBtrfs(storeRoot, rootless)
      : requested === 'fuse-overlayfs'
        ? probeFuseOverlayfs(storeRoot)
        : requested === 'zfs'
          ? probeZfs(opts.zfsDataset, rootless)
          : { ok: true as const };
  if (probe.ok) return;
  const code = UNUSABLE_CODE[requested] ?? 'DRIVER_UNUSABLE';
  throw new HutchError(code, `the ${requested} storage driver cannot work here: ${probe.reason}`, {
    hint: probe.hint,
  });
}

/**
 * The driver for a new store: the one asked for (btrfs and fuse-overlayfs
 * only where they can work: else the error says why and what to do); else
 * the first that works (storage/drivers/choice.ts).
 */
export function chooseDriver(
  requested: string | undefined,
  storeRoot: string,
  opts: DriverOptions,
): DriverName {
  const { rootless } = opts;
  if (requested !== undefined) {
    if (!isDriverName(requested)) {
      throw new HutchError('BAD_DRIVER', `unknown storage driver "${requested}"`, {
        hint: `Use one of: ${DRIVERS.join(', ')}.`,
      });
    }
    refuseUnusable(requested, storeRoot, opts);
    return requested;
  }
  // A configured parent dataset asks for zfs: rootful it must work; rootless it cannot, and is passed over.
  if (opts.zfsDataset !== undefined) {
    const zfs = zfsFromConfig(opts);
    if (zfs !== undefined) return zfs;
  }
  const choice = chooseAutomatically({
    btrfs: () => onBtrfs(storeRoot) && probeBtrfs(storeRoot, rootless).ok,
    zfsVersion: () => zfsVersionAt(storeRoot),
    overlay: () => overlayWorks(storeRoot, rootless, opts.probeDir),
    fuseOverlayfs: () => probeFuseOverlayfs(storeRoot),
  });
  log.debug(`storage driver ${choice.driver}: ${choice.reason}`);
  return choice.driver;
}

/** zfs when `zfs_dataset` is set and hutch is rootful; undefined rootless (with the reason in the debug log). */
function zfsFromConfig(opts: DriverOptions): 'zfs' | undefined {
  const probe = probeZfs(opts.zfsDataset, opts.rootless);
  if (probe.ok) {
    log.debug(`storage driver zfs: zfs_dataset is set to ${probe.dataset}`);
    return 'zfs';
  }
  if (opts.rootless) {
    log.debug(`zfs_dataset is set but not used: ${probe.reason}`);
    return undefined;
  }
  throw new HutchError('ZFS_UNUSABLE', `the zfs storage driver cannot work here: ${probe.reason}`, {
    hint: probe.hint,
  });
}

export function openDriver(name: DriverName, storeRoot: string, opts: DriverOptions): LayerDriver {
  const { rootless } = opts;
  switch (name) {
    case 'overlay':
      return new OverlayDriver(storeRoot, rootless);
    case 'vfs':
      return new VfsDriver(storeRoot, rootless);
    case 'fuse-overlayfs':
      return new FuseOverlayDriver(storeRoot, rootless);
    case 'btrfs': {
      const driver = new BtrfsDriver(storeRoot, rootless);
      driver.sweepAbandoned();
      return driver;
    }
    case 'zfs': {
      const driver = new ZfsDriver(storeRoot, storeDataset(storeRoot, opts.zfsDataset, rootless));
      driver.open();
      driver.sweepAbandoned();
      return driver;
    }
  }
}
