/**
 * The loop-device btrfs filesystems test/setup/btrfs.ts prepares (as root,
 * through npm test): where this test user's directory on each is, and how to
 * tell a subvolume from a directory without root (btrfs subvolume show
 * needs CAP_SYS_ADMIN; a subvolume's root directory always has inode 256).
 */
import { existsSync, lstatSync, statfsSync } from 'node:fs';
import { join } from 'node:path';

const BTRFS_MAGIC = 0x9123683e;

function userDir(mount: string | undefined): string | undefined {
  if (!mount) return undefined;
  const dir = join(mount, String(process.getuid?.() ?? 0));
  return existsSync(dir) ? dir : undefined;
}

/** This user's directory on the btrfs mounted with user_subvol_rm_allowed. */
export const BTRFS_DIR = userDir(process.env.HUTCH_TEST_BTRFS);
/** This user's directory on the btrfs mounted without it. */
export const BTRFS_STRICT_DIR = userDir(process.env.HUTCH_TEST_BTRFS_STRICT);

export const NEEDS_BTRFS = BTRFS_DIR
  ? false
  : 'needs the test btrfs (npm test as root mounts one on a loop device: HUTCH_TEST_BTRFS)';
export const NEEDS_STRICT_BTRFS = BTRFS_STRICT_DIR
  ? false
  : 'needs the test btrfs without user_subvol_rm_allowed (HUTCH_TEST_BTRFS_STRICT, made by npm test as root)';

export function isSubvolume(path: string): boolean {
  try {
    return lstatSync(path).ino === 256 && statfsSync(path).type === BTRFS_MAGIC;
  } catch {
    return false;
  }
}
