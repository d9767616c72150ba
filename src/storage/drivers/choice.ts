/**
 * Which driver a new store gets when none is asked for, from tests made
 * only when they matter (each is a real attempt in the store's directory:
 * a subvolume, a mount). The first that works of:
 *
 *   btrfs           the store is on btrfs and this user may make and delete subvolumes
 *   overlay         a kernel overlay test mount works, and the filesystem can hold
 *                   overlay's upper layer (ZFS only from OpenZFS 2.2, which added the
 *                   whiteout rename overlay needs: before it, the mount may work and
 *                   deletions fail later, so the version decides, not the test)
 *   fuse-overlayfs  installed, /dev/fuse usable, and a test mount works
 *   vfs             always
 *
 * ZFS's own datasets cannot be made rootless (no delegation for an
 * unprivileged user), so rootless on ZFS is overlay or fuse-overlayfs. The
 * zfs driver is never among these: it needs a parent dataset only
 * configuration names (`zfs_dataset`), so index.ts takes it from there first.
 */
import { ZFS_OVERLAY_VERSION } from '../../host/storage.ts';
import { atLeast, parseVersion } from '../../host/kernel.ts';
import type { FuseProbe } from './fuse-overlayfs-probe.ts';

export type AutoDriver = 'btrfs' | 'overlay' | 'fuse-overlayfs' | 'vfs';

export interface ChoiceTests {
  /** The store is on btrfs and a test subvolume could be made and deleted. */
  btrfs: () => boolean;
  /** On ZFS: the module's version ('' when unknown); undefined when the store is not on ZFS. */
  zfsVersion: () => string | undefined;
  /** A kernel overlay test mount worked. */
  overlay: () => boolean;
  fuseOverlayfs: () => FuseProbe;
}

export interface AutoChoice {
  driver: AutoDriver;
  /** Why, in words for `hutch info` and the debug log. */
  reason: string;
}

/** Kernel overlay on ZFS: whether its version allows it, and the words for when it does not. */
function zfsBlocksOverlay(version: string): string | undefined {
  const v = parseVersion(version);
  if (v === undefined) return undefined; // unknown: the test mount decides
  if (atLeast(v, ZFS_OVERLAY_VERSION)) return undefined;
  return `the store is on OpenZFS ${version}, and kernel overlay needs OpenZFS 2.2`;
}

export function chooseAutomatically(tests: ChoiceTests): AutoChoice {
  if (tests.btrfs()) {
    return {
      driver: 'btrfs',
      reason: 'the store is on btrfs, where this user may create and delete subvolumes',
    };
  }
  const zfs = tests.zfsVersion();
  const blocked = zfs === undefined ? undefined : zfsBlocksOverlay(zfs);
  let noOverlay: string;
  if (blocked !== undefined) noOverlay = blocked;
  else if (tests.overlay()) {
    return {
      driver: 'overlay',
      reason:
        zfs === undefined
          ? 'a test mount of kernel overlay worked'
          : `the store is on OpenZFS ${zfs || '(version unknown)'} and a test mount of kernel overlay worked`,
    };
  } else noOverlay = 'a test mount of kernel overlay failed';
  const fuse = tests.fuseOverlayfs();
  if (fuse.ok) return { driver: 'fuse-overlayfs', reason: `${noOverlay}; fuse-overlayfs works` };
  return { driver: 'vfs', reason: `${noOverlay}; fuse-overlayfs cannot be used: ${fuse.reason}` };
}
