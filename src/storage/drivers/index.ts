/**
 * Choosing and opening the storage driver. A store keeps the driver it was
 * created with (store.json); opening it with another is refused with the way
 * out, since layers of one driver mean nothing to another.
 */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { helperPath } from '../../sys/native-paths.ts';
import { HutchError } from '../../util/errors.ts';
import type { LayerDriver } from '../types.ts';
import { BtrfsDriver } from './btrfs.ts';
import { probeBtrfs } from './btrfs-probe.ts';
import { onBtrfs } from './btrfs-tool.ts';
import { OverlayDriver } from './overlay.ts';
import { VfsDriver } from './vfs.ts';

export const DRIVERS = ['overlay', 'vfs', 'btrfs'] as const;
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

/**
 * The driver for a new store: the one asked for (btrfs only where it can
 * work: else the error says why and what to do); else btrfs where the store
 * is on a btrfs that lets this user create and delete subvolumes; else
 * overlay where a test mount works; else vfs.
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
    if (requested === 'btrfs') {
      const probe = probeBtrfs(storeRoot, rootless);
      if (!probe.ok) {
        throw new HutchError('BTRFS_UNUSABLE', `the btrfs storage driver cannot work here: ${probe.reason}`, {
          hint: probe.hint,
        });
      }
    }
    return requested;
  }
  if (onBtrfs(storeRoot) && probeBtrfs(storeRoot, rootless).ok) return 'btrfs';
  return overlayWorks(storeRoot, rootless) ? 'overlay' : 'vfs';
}

export function openDriver(name: DriverName, storeRoot: string, rootless: boolean): LayerDriver {
  switch (name) {
    case 'overlay':
      return new OverlayDriver(storeRoot, rootless);
    case 'vfs':
      return new VfsDriver(storeRoot, rootless);
    case 'btrfs': {
      const driver = new BtrfsDriver(storeRoot, rootless);
      driver.sweepAbandoned();
      return driver;
    }
  }
}
