/**
 * Whether the btrfs driver can work for a store: the store is on btrfs, and
 * a test subvolume can be created and deleted there by this user. Only the
 * real attempt tells (rootless deletion depends on a mount option, and on
 * the btrfs tool being there); the mount options then explain a refusal.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseMountInfo } from '../../host/cgroups.ts';
import type { MountInfo } from '../../host/cgroups.ts';
import { fsTypeName } from '../../host/view.ts';
import { isHutchError } from '../../util/errors.ts';
import { TEMP_MARK } from '../../util/fs-atomic.ts';
import { btrfs, createSubvolume, onBtrfs } from './btrfs-tool.ts';

export const RM_OPTION = 'user_subvol_rm_allowed';

export type BtrfsProbe =
  { ok: true; mount: string | undefined } | { ok: false; reason: string; hint: string };

/** The store, or its nearest existing ancestor when it is not made yet. */
function existingDir(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/** The mount that holds `path` (the longest mount point above it). */
function mountOf(path: string): MountInfo | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  const inside = (m: MountInfo): boolean =>
    m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
  // The last of equal mount points is the one on top.
  return parseMountInfo(text)
    .filter(inside)
    .reduce<MountInfo | undefined>(
      (best, m) => (!best || m.mountPoint.length >= best.mountPoint.length ? m : best),
      undefined,
    );
}

function fsName(path: string): string {
  try {
    const { statfsSync } = process.getBuiltinModule('node:fs');
    return fsTypeName(statfsSync(path).type);
  } catch {
    return 'an unknown filesystem';
  }
}

export function probeBtrfs(storeRoot: string, rootless: boolean): BtrfsProbe {
  const dir = existingDir(storeRoot);
  const mount = mountOf(dir);
  if (!onBtrfs(dir)) {
    return {
      ok: false,
      reason: `${storeRoot} is on ${fsName(dir)}, not btrfs`,
      hint: 'Put the store on a btrfs filesystem (HUTCH_ROOT, or root = "..." under [storage] in hutch.toml), or use another --storage-driver.',
    };
  }
  let scratch: string;
  try {
    scratch = mkdtempSync(join(dir, `${TEMP_MARK}btrfs-probe-`));
  } catch (e) {
    return {
      ok: false,
      reason: `cannot make a test directory in ${dir}: ${(e as Error).message}`,
      hint: `Make ${dir} writable for this user.`,
    };
  }
  const sub = join(scratch, 'subvolume');
  try {
    try {
      createSubvolume(sub);
    } catch (e) {
      const why = isHutchError(e) ? e.message : String(e);
      return {
        ok: false,
        reason: `a test subvolume could not be made: ${why}`,
        hint: isHutchError(e) ? (e.hint ?? '') : '',
      };
    }
    const del = btrfs(['subvolume', 'delete', sub]);
    if (del.ok) return { ok: true, mount: mount?.mountPoint };
    const at = mount?.mountPoint ?? dir;
    if (rootless && mount && !mount.superOptions.includes(RM_OPTION)) {
      return {
        ok: false,
        reason: `the btrfs at ${at} is mounted without ${RM_OPTION}, so a user could never delete images and containers kept as subvolumes`,
        hint: `As root: mount -o remount,${RM_OPTION} ${at} (at once), and add ${RM_OPTION} to its options in /etc/fstab (for the next boot). Or use another --storage-driver.`,
      };
    }
    return {
      ok: false,
      reason: `a test subvolume in ${at} could be made but not deleted: ${del.error}`,
      hint: 'Run `hutch doctor`, or use another --storage-driver.',
    };
  } finally {
    // rmdir of an emptied subvolume works even where `subvolume delete` did not.
    rmSync(scratch, { recursive: true, force: true });
  }
}
