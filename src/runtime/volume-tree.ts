/**
 * Whole-tree operations behind volume snapshots, each done the cheapest way
 * the filesystem allows: a btrfs snapshot where the tree is a subvolume (one
 * kernel transaction, whatever its size), else a reflink copy (`cp
 * --reflink=always`: XFS, btrfs directories that are not subvolumes), else a
 * plain copy, which costs the full size and is reported as such.
 */
import {
  accessSync,
  constants,
  copyFileSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import {
  createSubvolume,
  isSubvolume,
  onBtrfs,
  removeSubvolume,
  setReadOnly,
  snapshotReadOnly,
  snapshotSubvolume,
} from '../storage/drivers/btrfs-tool.ts';
import { sys } from '../sys/native.ts';
import { HutchError, errnoCode } from '../util/errors.ts';
import { TEMP_MARK, lstatIfExists } from '../util/fs-atomic.ts';
import { log } from '../util/log.ts';
import { randomHex } from '../util/random.ts';

/** How a tree was copied: users see it, since a plain copy costs the whole size. */
export type CopyMethod = 'btrfs' | 'zfs' | 'reflink' | 'copy';

/**
 * An empty directory for volume content: a subvolume where the store is on
 * btrfs (so it can be snapshotted later), a plain directory elsewhere or
 * where no subvolume can be made (the btrfs tool missing).
 */
export function makeDataDir(path: string): 'subvolume' | 'directory' {
  if (onBtrfs(dirname(path))) {
    try {
      createSubvolume(path);
      return 'subvolume';
    } catch (e) {
      log.debug(`volume data at ${path} is a plain directory: ${(e as Error).message}`);
    }
  }
  mkdirSync(path);
  return 'directory';
}

const reflinkByDir = new Map<string, boolean>();

/** Whether files in `dir` can be reflinked: only the attempt tells (a probe file, cloned with FICLONE). */
export function reflinkWorks(dir: string): boolean {
  const known = reflinkByDir.get(dir);
  if (known !== undefined) return known;
  const probe = join(dir, `${TEMP_MARK}reflink-${process.pid}-${randomHex(4)}`);
  let works: boolean;
  try {
    writeFileSync(probe, 'x');
    copyFileSync(probe, `${probe}-clone`, constants.COPYFILE_FICLONE_FORCE);
    works = true;
  } catch {
    works = false;
  } finally {
    rmSync(probe, { force: true });
    rmSync(`${probe}-clone`, { force: true });
  }
  reflinkByDir.set(dir, works);
  return works;
}

function cp(reflink: 'always' | 'never', src: string, dst: string): void {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  // `SRC/.` into an existing DST: the content, and the top directory's owner, mode and times.
  const r = spawnSync('cp', ['-a', `--reflink=${reflink}`, '--', `${src}/.`, `${dst}/`], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (r.status !== 0) {
    throw new HutchError(
      'VOLUME_COPY',
      `copying ${src} to ${dst} failed: ${(r.stderr || String(r.error)).trim()}`,
      {
        hint: 'Check free space on the store, and that the volume holds nothing a user cannot copy (device nodes, rootless).',
      },
    );
  }
}

/**
 * Makes `dst` (which must not exist) a copy of the tree `src`. A read-only
 * copy is what a snapshot keeps; a writable one is a volume's content.
 */
export function copyTree(src: string, dst: string, opts: { readOnly: boolean }): CopyMethod {
  if (isSubvolume(src)) {
    if (opts.readOnly) snapshotReadOnly(src, dst);
    else snapshotSubvolume(src, dst);
    return 'btrfs';
  }
  const kind = makeDataDir(dst);
  const method: CopyMethod = reflinkWorks(dirname(dst)) ? 'reflink' : 'copy';
  try {
    cp(method === 'reflink' ? 'always' : 'never', src, dst);
    if (opts.readOnly && kind === 'subvolume') setReadOnly(dst, true);
  } catch (e) {
    removeTree(dst);
    throw e;
  }
  return method;
}

/** A read-only subvolume answers EROFS to a write-access check. */
function isReadOnly(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return false;
  } catch (e) {
    return errnoCode(e) === 'EROFS';
  }
}

/**
 * Removes a tree that may hold subvolumes (a volume's content, its
 * snapshots, a half-made copy), read-only ones included: those are made
 * writable first, since a user may not delete them otherwise. Subvolumes
 * sit at most a few levels down, so the search for
 * them stops there (five levels: `volumes/.tmp-recv-X/snapshots/NAME/_data`
 * from the volumes directory); deeper ones are left to the btrfs tool's
 * fallback.
 */
export function removeTree(path: string, depth = 0): void {
  const st = lstatIfExists(path);
  if (!st) return;
  if (!st.isDirectory()) {
    rmSync(path, { force: true });
    return;
  }
  if (isSubvolume(path)) {
    if (isReadOnly(path)) setReadOnly(path, false, { force: true });
    removeSubvolume(path);
    return;
  }
  if (depth < 5) {
    for (const n of readdirSync(path)) {
      const child = join(path, n);
      if (lstatIfExists(child)?.isDirectory()) removeTree(child, depth + 1);
    }
  }
  rmSync(path, { recursive: true, force: true });
}

/**
 * Puts `fresh` in the place of `current` and `current` at `fresh`, in one
 * step (renameat2 RENAME_EXCHANGE: ext4, XFS, btrfs, tmpfs). Where the
 * filesystem cannot, two renames do it, with a moment in between where
 * `current` is absent; nothing is lost then either, both trees stay.
 */
export function exchange(fresh: string, current: string): void {
  try {
    sys().exchange(fresh, current);
    return;
  } catch (e) {
    const code = errnoCode(e);
    if (code !== 'EINVAL' && code !== 'ENOSYS' && code !== 'ENOTSUP') throw e;
  }
  const aside = join(dirname(current), `${TEMP_MARK}aside-${process.pid}-${randomHex(4)}`);
  renameSync(current, aside);
  renameSync(fresh, current);
  renameSync(aside, fresh);
}
