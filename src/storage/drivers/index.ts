/**
 * Choosing and opening the storage driver. A store keeps the driver it was
 * created with (store.json); opening it with another is refused with the way
 * out, since layers of one driver mean nothing to another.
 */
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
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

export const DRIVERS = ['overlay', 'vfs', 'btrfs', 'fuse-overlayfs'] as const;
export type DriverName = (typeof DRIVERS)[number];

export function isDriverName(s: string): s is DriverName {
  return (DRIVERS as readonly string[]).includes(s);
}

/** A real overlay mount in a scratch directory of the store: the only test that tells. */
export function overlayWorks(storeRoot: string, rootless: boolean): boolean {
  mkdirSync(storeRoot, { recursive: true, mode: 0o700 });
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

/** A driver asked for where it cannot work: the reason and the fix, before anything is written. */
function refuseUnusable(requested: DriverName, storeRoot: string, rootless: boolean): void {
  const probe =
    requested === 'btrfs'
      ? probeBtrfs(storeRoot, rootless)
      : requested === 'fuse-overlayfs'
        ? probeFuseOverlayfs(storeRoot)
        : { ok: true as const };
  if (probe.ok) return;
  const code = requested === 'btrfs' ? 'BTRFS_UNUSABLE' : 'FUSE_OVERLAYFS_UNUSABLE';
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
  rootless: boolean,
): DriverName {
  if (requested !== undefined) {
    if (!isDriverName(requested)) {
      throw new HutchError('BAD_DRIVER', `unknown storage driver "${requested}"`, {
        hint: `Use one of: ${DRIVERS.join(', ')}.`,
      });
    }
    refuseUnusable(requested, storeRoot, rootless);
    return requested;
  }
  const choice = chooseAutomatically({
    btrfs: () => onBtrfs(storeRoot) && probeBtrfs(storeRoot, rootless).ok,
    zfsVersion: () => zfsVersionAt(storeRoot),
    overlay: () => overlayWorks(storeRoot, rootless),
    fuseOverlayfs: () => probeFuseOverlayfs(storeRoot),
  });
  log.debug(`storage driver ${choice.driver}: ${choice.reason}`);
  return choice.driver;
}

export function openDriver(name: DriverName, storeRoot: string, rootless: boolean): LayerDriver {
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
  }
}
