/**
 * `hutch setup`'s storage step: a home for the user's store on the disk
 * that holds it, fitted to that disk.
 *
 * - btrfs (one disk or btrfs RAID): a subvolume of its own, `@hutch-USER`,
 *   made from the top level (mounted for the moment at a private directory),
 *   mounted at the store by an fstab entry that names the filesystem by UUID
 *   with `user_subvol_rm_allowed` (the btrfs driver deletes its subvolumes as
 *   the user), `noatime`, zstd compression and `nofail` (a missing disk must
 *   not stop the boot). The store then gets the btrfs driver.
 * - ZFS: a dataset `POOL/hutch-USER` mounted at the store, with lz4
 *   compression, `xattr=sa`, `acltype=posixacl` and `atime=off`. (Rootless,
 *   hutch cannot make datasets per layer; the store gets overlay or
 *   fuse-overlayfs on it.)
 * - ext4 or xfs, on a plain disk or md RAID: nothing to make; overlay works.
 * - Anything else is named and explained, never guessed at.
 *
 * The store is chowned to the user. Run again, it finds the mount or the
 * dataset in place and changes nothing.
 */
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { describeLayout, layoutOf, realProbe } from '../../host/disks.ts';
import type { Layout, Probe } from '../../host/disks.ts';
import { HutchError } from '../../util/errors.ts';
import { writeFileAtomic } from '../../util/fs-atomic.ts';
import type { SetupStep, SetupTarget } from './types.ts';

const BTRFS_OPTIONS = ['user_subvol_rm_allowed', 'noatime', 'compress=zstd', 'nofail'];
const ZFS_PROPERTIES = ['compression=lz4', 'xattr=sa', 'acltype=posixacl', 'atime=off'];

/** Where the user's store lives unless told: XDG's data home, as hutch's own default. */
export function defaultStorePath(user: { home: string }): string {
  return join(user.home, '.local/share/hutch');
}

function fstabPath(t: SetupTarget): string {
  return join(t.hostRoot, 'etc/fstab');
}

function readFstab(t: SetupTarget): string {
  try {
    return readFileSync(fstabPath(t), 'utf8');
  } catch {
    return '';
  }
}

function sh(probe: Probe, cmd: string, args: string[]): string {
  const out = probe.run(cmd, args);
  if (out === undefined) throw new HutchError('SETUP', `${cmd} ${args.join(' ')} failed`);
  return out;
}

/** The fstab line for the user's subvolume: by UUID, so it survives device renames. */
export function btrfsFstabLine(uuid: string, store: string, subvol: string): string {
  return `UUID=${uuid} ${store} btrfs subvol=/${subvol},${BTRFS_OPTIONS.join(',')} 0 0`;
}

export function storageSteps(t: SetupTarget, store: string, probe: Probe = realProbe): SetupStep[] {
  const layout = layoutOf(store, probe);
  const title = 'storage';
  const found = describeLayout(layout);
  switch (layout.kind) {
    case 'btrfs':
      return [btrfsStep(t, store, layout, probe, found)];
    case 'zfs':
      return [zfsStep(t, store, layout, probe, found)];
    case 'ext4':
    case 'xfs':
      return [
        {
          id: 'storage',
          title,
          status: 'ok',
          detail: `${store} is on ${found}: kernel overlay works there, nothing to make`,
        },
      ];
    default:
      return [
        {
          id: 'storage',
          title,
          status: 'manual',
          detail: `${layout.why}. Give the store a place on a local disk (hutch --root DIR, or root under [storage] in hutch.toml).`,
        },
      ];
  }
}

function btrfsStep(
  t: SetupTarget,
  store: string,
  l: Extract<Layout, { kind: 'btrfs' }>,
  probe: Probe,
  found: string,
): SetupStep {
  const subvol = `@hutch-${t.user.name}`;
  const line = btrfsFstabLine(l.uuid, store, subvol);
  const fstab = readFstab(t);
  const inFstab = fstab.split('\n').some((x) => x.trim() === line);
  const mounted = l.mount.target === store && l.mount.subvol === `/${subvol}`;
  if (mounted && inFstab && l.mount.options.includes('user_subvol_rm_allowed')) {
    return {
      id: 'storage',
      title: 'storage',
      status: 'ok',
      detail: `${store} is the subvolume ${subvol} of ${found}`,
    };
  }
  if (l.mount.target === store && !mounted) {
    return {
      id: 'storage',
      title: 'storage',
      status: 'manual',
      detail: `${store} is already a mount point (${l.mount.device}${l.mount.subvol ?? ''}); hutch will not mount over it`,
    };
  }
  const device = l.mount.device;
  return {
    id: 'storage',
    title: 'storage',
    status: 'change',
    detail: `${store} is on ${found}: give the store a subvolume of its own, ${subvol}, mounted there with user_subvol_rm_allowed`,
    diff: [
      `btrfs subvolume create <top level of UUID=${l.uuid}>/${subvol}`,
      ...(inFstab ? [] : [`+ ${fstabPath(t)}: ${line}`]),
      `mount -t btrfs -o subvol=/${subvol},${BTRFS_OPTIONS.join(',')} ${device} ${store}`,
      `chown ${t.user.uid}:${t.user.gid} ${store}`,
    ],
    undo: [
      ...(inFstab ? [] : [{ kind: 'line' as const, path: fstabPath(t), line }]),
      { kind: 'mount', path: store },
    ],
    apply: () => {
      // The top level (subvolid=5), mounted privately for a moment: the subvolume goes beside the others, not inside one.
      const top = mkdtempSync('/run/hutch-setup-');
      try {
        sh(probe, 'mount', ['-t', 'btrfs', '-o', 'subvolid=5', device, top]);
        try {
          if (!existsSync(join(top, subvol))) sh(probe, 'btrfs', ['subvolume', 'create', join(top, subvol)]);
        } finally {
          sh(probe, 'umount', [top]);
        }
      } finally {
        rmdirSync(top);
      }
      if (!inFstab) {
        const text = readFstab(t);
        const sep = text === '' || text.endsWith('\n') ? '' : '\n';
        writeFileAtomic(
          fstabPath(t),
          `${text}${sep}# hutch setup: the store of ${t.user.name}\n${line}\n`,
          0o644,
        );
      }
      mkdirSync(store, { recursive: true, mode: 0o700 });
      sh(probe, 'mount', [
        '-t',
        'btrfs',
        '-o',
        `subvol=/${subvol},${BTRFS_OPTIONS.join(',')}`,
        device,
        store,
      ]);
      chownSync(store, t.user.uid, t.user.gid);
    },
  };
}

function zfsStep(
  t: SetupTarget,
  store: string,
  l: Extract<Layout, { kind: 'zfs' }>,
  probe: Probe,
  found: string,
): SetupStep {
  const dataset = `${l.pool}/hutch-${t.user.name}`;
  if (l.dataset === dataset && l.mount.target === store) {
    return { id: 'storage', title: 'storage', status: 'ok', detail: `${store} is the dataset ${dataset}` };
  }
  const props = ZFS_PROPERTIES.flatMap((p) => ['-o', p]);
  return {
    id: 'storage',
    title: 'storage',
    status: 'change',
    detail: `${store} is on ${found}: give the store a dataset of its own, ${dataset}`,
    diff: [
      `zfs create -o mountpoint=${store} ${ZFS_PROPERTIES.map((p) => `-o ${p}`).join(' ')} ${dataset}`,
      `chown ${t.user.uid}:${t.user.gid} ${store}`,
    ],
    apply: () => {
      if (probe.run('zfs', ['list', '-H', '-o', 'name', dataset]) === undefined) {
        // Older ZFS (zfs-fuse among them) lacks some properties: create with what it takes, and say which were left.
        const skipped: string[] = [];
        if (probe.run('zfs', ['create', '-o', `mountpoint=${store}`, ...props, dataset]) === undefined) {
          sh(probe, 'zfs', ['create', '-o', `mountpoint=${store}`, dataset]);
          for (const p of ZFS_PROPERTIES)
            if (probe.run('zfs', ['set', p, dataset]) === undefined) skipped.push(p);
        }
        if (skipped.length > 0)
          process.stderr.write(
            `hutch setup: this ZFS does not take ${skipped.join(', ')}; left at its defaults\n`,
          );
      }
      chownSync(store, t.user.uid, t.user.gid);
    },
  };
}
