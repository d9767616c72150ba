/**
 * Which storage driver suits the filesystem a store sits on, and why.
 *
 * - overlay (kernel overlayfs): the fast one. Its upper layer must live on a
 *   filesystem that supports whiteouts and the xattrs overlay writes: ext4,
 *   xfs, btrfs, tmpfs do; NFS, SMB, 9p, FUSE and overlay itself do not.
 *   Rootless, it needs Linux 5.11 (5.13 with SELinux enforcing), and it is
 *   mounted with `userxattr`.
 * - ZFS: OpenZFS gained the rename-with-whiteout overlay needs in 2.2. A
 *   rootless user cannot create ZFS datasets either, so before 2.2 there is
 *   nothing fast to use rootless: fuse-overlayfs.
 * - fuse-overlayfs: overlay in user space; slower, works nearly anywhere
 *   /dev/fuse is usable.
 * - btrfs: a subvolume per layer, snapshots for children and containers.
 *   Chosen first where the store is on btrfs and a test subvolume can be
 *   made and deleted by this user (rootless: the mount option
 *   `user_subvol_rm_allowed`); storage/drivers/btrfs-probe.ts makes the test.
 * - vfs: every layer a full copy. Always works; slow and large.
 *
 * A real test mount (the doctor's probe, hutch-helper probe-overlay) has the
 * last word over all of this.
 */
import {
  ROOTLESS_OVERLAY_KERNEL,
  ROOTLESS_OVERLAY_KERNEL_SELINUX,
  atLeast,
  formatVersion,
  parseVersion,
} from './kernel.ts';
import type { Version } from './kernel.ts';
import type { HostView } from './view.ts';

export type StorageDriver = 'btrfs' | 'overlay' | 'fuse-overlayfs' | 'vfs';

/** Filesystems kernel overlay is known to take as its upper layer. */
export const OVERLAY_UPPER_OK: readonly string[] = ['ext4', 'xfs', 'btrfs', 'tmpfs', 'f2fs'];

/** Filesystems kernel overlay cannot use as its upper layer, with the reason. */
const OVERLAY_UPPER_BAD: Readonly<Record<string, string>> = {
  nfs: "overlay's upper layer needs trusted.* or user.* xattrs and d_type, which NFS does not provide (the kernel's overlayfs documentation: NFS is not suitable)",
  cifs: 'SMB/CIFS cannot hold overlay upper directories',
  smb2: 'SMB cannot hold overlay upper directories',
  '9p': '9p cannot hold overlay upper directories',
  afs: 'AFS cannot hold overlay upper directories',
  overlay: 'an overlay filesystem cannot be the upper layer of another overlay (is this inside a container?)',
  fuse: 'a FUSE filesystem cannot be the upper layer of kernel overlay',
  aufs: 'aufs cannot be the upper layer of kernel overlay',
  ecryptfs: 'eCryptfs cannot be the upper layer of kernel overlay',
  squashfs: 'squashfs is read-only',
  vfat: 'FAT has no ownership, xattrs or whiteouts',
  exfat: 'exFAT has no ownership, xattrs or whiteouts',
  ntfs: 'NTFS cannot be the upper layer of kernel overlay',
};

/** OpenZFS learnt RENAME_WHITEOUT, and with it overlay upper layers, in 2.2. */
export const ZFS_OVERLAY_VERSION: Version = [2, 2];

export interface StoreFilesystem {
  /** The store path, or its nearest existing ancestor when it does not exist yet. */
  checkedPath: string;
  fsType: string | undefined;
}

export function storeFilesystem(host: HostView, storePath: string): StoreFilesystem {
  let p = storePath.replace(/\/+$/, '') || '/';
  while (p !== '/' && !host.exists(p)) p = p.slice(0, p.lastIndexOf('/')) || '/';
  return { checkedPath: p, fsType: host.statfsType(p) };
}

export interface OverlayFacts {
  fsType: string | undefined;
  rootless: boolean;
  kernel: Version | undefined;
  selinuxEnforcing: boolean;
  /** /sys/module/zfs/version, when ZFS is loaded. */
  zfsVersion: string | undefined;
}

export interface OverlayVerdict {
  /** yes: known to work; no: known not to; maybe: only a test mount can tell. */
  possible: 'yes' | 'no' | 'maybe';
  reason: string;
}

/** Whether kernel overlay can work for this store, from facts alone (no mount). */
export function kernelOverlayVerdict(f: OverlayFacts): OverlayVerdict {
  const fs = f.fsType;
  // A filesystem overlay cannot write to rules it out whatever the kernel.
  const bad = fs === undefined ? undefined : OVERLAY_UPPER_BAD[fs];
  if (bad) return { possible: 'no', reason: bad };
  if (f.rootless && f.kernel) {
    if (!atLeast(f.kernel, ROOTLESS_OVERLAY_KERNEL)) {
      return {
        possible: 'no',
        reason: `Linux ${formatVersion(f.kernel)} is older than 5.11, the first kernel that mounts overlay in a user namespace`,
      };
    }
    if (f.selinuxEnforcing && !atLeast(f.kernel, ROOTLESS_OVERLAY_KERNEL_SELINUX)) {
      return {
        possible: 'no',
        reason: `SELinux is enforcing and Linux ${formatVersion(f.kernel)} is older than 5.13, which rootless overlay needs with SELinux`,
      };
    }
  }
  if (fs === undefined) return { possible: 'maybe', reason: 'the store filesystem could not be identified' };
  if (fs === 'zfs') {
    const v = f.zfsVersion === undefined ? undefined : parseVersion(f.zfsVersion);
    if (!v)
      return {
        possible: 'maybe',
        reason: 'the store is on ZFS of unknown version (overlay needs OpenZFS 2.2)',
      };
    if (atLeast(v, ZFS_OVERLAY_VERSION)) {
      return {
        possible: 'yes',
        reason: `the store is on OpenZFS ${f.zfsVersion}, which supports overlay (2.2 or later)`,
      };
    }
    return {
      possible: 'no',
      reason: f.rootless
        ? `the store is on OpenZFS ${f.zfsVersion}: overlay needs OpenZFS 2.2, and a rootless user cannot create ZFS datasets`
        : `the store is on OpenZFS ${f.zfsVersion}: overlay needs OpenZFS 2.2`,
    };
  }
  if (OVERLAY_UPPER_OK.includes(fs)) return { possible: 'yes', reason: `the store is on ${fs}` };
  return { possible: 'maybe', reason: `the store is on ${fs}, where overlay is untested` };
}

export interface DriverInput extends OverlayFacts {
  /** The result of a real test mount, if one was made. */
  probe: { ok: boolean; error?: string | undefined } | undefined;
  /** fuse-overlayfs is installed. */
  fuseOverlayfs: boolean;
  /** /dev/fuse exists and the user may open it. */
  fuseDevice: boolean;
  /** The btrfs test (a subvolume made and deleted), made only where the store is on btrfs. */
  btrfs?: { ok: true } | { ok: false; reason: string } | undefined;
}

export interface DriverChoice {
  driver: StorageDriver;
  reason: string;
  verdict: OverlayVerdict;
}

export function chooseStorageDriver(input: DriverInput): DriverChoice {
  const verdict = kernelOverlayVerdict(input);
  const { probe, btrfs } = input;
  if (btrfs?.ok) {
    return {
      driver: 'btrfs',
      reason:
        'the store is on btrfs, where this user may create and delete subvolumes: layers and container roots are snapshots',
      verdict,
    };
  }
  // Where btrfs was tried, every other choice says why it is not btrfs.
  const notBtrfs = btrfs ? `; btrfs is not used: ${btrfs.reason}` : '';
  if (verdict.possible !== 'no' && probe?.ok) {
    return {
      driver: 'overlay',
      reason: `${verdict.reason}, and a test mount of kernel overlay worked${notBtrfs}`,
      verdict,
    };
  }
  if (verdict.possible === 'yes' && probe === undefined) {
    return {
      driver: 'overlay',
      reason: `${verdict.reason} (kernel overlay not test-mounted)${notBtrfs}`,
      verdict,
    };
  }
  let why = verdict.reason;
  if (verdict.possible !== 'no') {
    why = probe
      ? `${verdict.reason}, but a test mount of kernel overlay failed${probe.error ? `: ${probe.error}` : ''}`
      : `${verdict.reason}, and no test mount was made`;
  }
  if (input.fuseOverlayfs && input.fuseDevice) {
    return { driver: 'fuse-overlayfs', reason: `${why}; fuse-overlayfs is used instead${notBtrfs}`, verdict };
  }
  const missing = !input.fuseOverlayfs ? 'fuse-overlayfs is not installed' : '/dev/fuse is not usable';
  return {
    driver: 'vfs',
    reason: `${why}; ${missing}, so hutch falls back to vfs (a full copy of every layer: slow and large)${notBtrfs}`,
    verdict,
  };
}
