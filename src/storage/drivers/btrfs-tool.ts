/**
 * The few btrfs operations the btrfs driver needs, done by btrfs-progs'
 * `btrfs` tool. A spawn costs a few milliseconds, once per layer and once
 * per container root (measured in ARCHITECTURE.md), so no ioctl of our own
 * is worth its C.
 *
 * What works without root (in hutch's user namespace as well):
 * - creating a subvolume, and snapshotting one whose files the caller owns
 *   (sub-ids count: they are mapped in the namespace);
 * - renaming a subvolume within its parent directory, as any directory;
 * - deleting one with `btrfs subvolume delete` only where the filesystem is
 *   mounted with `user_subvol_rm_allowed`, and only once it is writable;
 * - rmdir(2) of an empty, writable subvolume (Linux >= 4.18) even without
 *   that option: the slow way out, a walk of the whole tree.
 */
import { lstatSync, rmSync, statfsSync } from 'node:fs';
import { HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import { which } from '../../util/which.ts';

export const BTRFS_MAGIC = 0x9123683e;
/** The inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID). */
const SUBVOLUME_ROOT_INO = 256;

/** Where `btrfs` is: users' PATHs often lack the sbin directories. */
function tool(): string {
  const found = which('btrfs') ?? ['/usr/sbin/btrfs', '/sbin/btrfs'].find((p) => which(p) !== undefined);
  if (found === undefined) {
    throw new HutchError(
      'BTRFS_TOOL',
      'the btrfs storage driver needs the btrfs tool, which is not installed',
      {
        hint: 'Install btrfs-progs (Debian and Ubuntu: sudo apt-get install btrfs-progs).',
      },
    );
  }
  return found;
}

export interface ToolResult {
  ok: boolean;
  /** btrfs-progs' own words, for error messages. */
  error: string;
}

/** Runs `btrfs ARGS`; its warnings about what an unprivileged caller may not read are dropped. */
export function btrfs(args: string[]): ToolResult {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync(tool(), args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const error = (r.stderr ?? '')
    .split('\n')
    .filter((l) => l.startsWith('ERROR: '))
    .map((l) => l.slice('ERROR: '.length))
    .join('; ');
  return { ok: r.status === 0, error: error || r.error?.message || `btrfs exited with ${r.status}` };
}

function orThrow(r: ToolResult, what: string): void {
  if (r.ok) return;
  throw new HutchError('STORAGE', `${what} failed: ${r.error}`, {
    hint: 'Check free space (btrfs filesystem df on the store) and run `hutch doctor`.',
  });
}

export function onBtrfs(path: string): boolean {
  try {
    return statfsSync(path).type === BTRFS_MAGIC;
  } catch {
    return false;
  }
}

export function isSubvolume(path: string): boolean {
  try {
    return lstatSync(path).ino === SUBVOLUME_ROOT_INO && onBtrfs(path);
  } catch {
    return false;
  }
}

export function createSubvolume(path: string): void {
  orThrow(btrfs(['subvolume', 'create', path]), `creating the btrfs subvolume ${path}`);
}

/** A writable snapshot of `source` at `target`: the kernel makes it in one transaction, whole or not at all. */
export function snapshotSubvolume(source: string, target: string): void {
  orThrow(btrfs(['subvolume', 'snapshot', source, target]), `snapshotting ${source} to ${target}`);
}

/** A read-only snapshot: what `btrfs send` needs, and what keeps a volume's snapshot as it was taken. */
export function snapshotReadOnly(source: string, target: string): void {
  orThrow(
    btrfs(['subvolume', 'snapshot', '-r', source, target]),
    `making a read-only snapshot of ${source} at ${target}`,
  );
}

/**
 * Sets or clears a subvolume's read-only flag (its owner may, rootless too).
 * `force` for one about to be deleted: a subvolume made by `btrfs receive`
 * refuses to become writable otherwise (it would no longer be a valid base
 * for the next incremental receive, which no longer matters then).
 */
export function setReadOnly(path: string, readOnly: boolean, opts: { force?: boolean } = {}): void {
  orThrow(
    btrfs(['property', 'set', ...(opts.force ? ['-f'] : []), '-ts', path, 'ro', String(readOnly)]),
    `making ${path} ${readOnly ? 'read-only' : 'writable'}`,
  );
}

/**
 * Removes a subvolume (or a plain directory left where one was meant to
 * be). A read-only one is made writable first, since an unprivileged user
 * may not delete it otherwise. Where deletion is refused (the filesystem
 * lost `user_subvol_rm_allowed`), or the subvolume holds subvolumes of its
 * own (made by a container), the tree is removed file by file, which ends
 * with rmdir of the emptied subvolume: slow, but it gets there.
 */
export function removeSubvolume(path: string): void {
  if (!isSubvolume(path)) {
    rmSync(path, { recursive: true, force: true });
    return;
  }
  let r = btrfs(['subvolume', 'delete', path]);
  if (!r.ok && /read-only/i.test(r.error)) {
    btrfs(['property', 'set', '-ts', path, 'ro', 'false']);
    r = btrfs(['subvolume', 'delete', path]);
  }
  if (r.ok) return;
  log.debug(`btrfs subvolume delete ${path}: ${r.error}; removing it file by file`);
  try {
    rmSync(path, { recursive: true, force: true });
  } catch (e) {
    throw new HutchError('STORAGE', `removing the btrfs subvolume ${path} failed: ${r.error}`, {
      hint: 'Rootless, the btrfs must be mounted with user_subvol_rm_allowed: run `hutch doctor`.',
      cause: e,
    });
  }
}
