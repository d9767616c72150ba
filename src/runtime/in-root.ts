/**
 * Paths inside a container's root filesystem, resolved as the container
 * would see them and never outside it. An image is untrusted: its
 * /etc/passwd may be a symbolic link to the host's /etc/shadow, or its /etc
 * a link to `/`. So a path is walked one component at a time with rootfs
 * as `/` (chroot semantics, as ../storage/extract/apply.ts does for
 * layers): an absolute link target starts again at rootfs, and `..` at the
 * top stays at rootfs. Missing components are kept as they are, so the
 * answer names where the file would be.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { joinRel, splitParent } from '../storage/extract/paths.ts';
import { errnoCode, HutchError } from '../util/errors.ts';
import { lstatIfExists } from '../util/fs-atomic.ts';

/** As Linux's MAXSYMLINKS. */
const MAX_SYMLINK_HOPS = 40;

/** The files read this way are small (passwd, group); a huge one is a hostile image, not a user database. */
const MAX_READ_BYTES = 16 * 1024 * 1024;

/** The host path of `path` (as seen inside the container) under `rootfs`. */
export function resolveInRoot(rootfs: string, path: string): string {
  return resolveWithRoot(rootfs, path).host;
}

/** The real rootfs (its own path is ours and trusted; only what is below it is not) and the host path. */
function resolveWithRoot(rootfs: string, path: string): { root: string; host: string } {
  const root = realpathSync(rootfs);
  const rel = walk(root, path);
  return { root, host: rel === '' ? root : `${root}/${rel}` };
}

/** Walks `path` below the real directory `root`; answers a symlink-free path relative to it. */
function walk(root: string, path: string): string {
  // Components still to visit, next one last; a link's target is pushed in front of the rest.
  const todo = path.split('/').reverse();
  let cur = '';
  let hops = 0;
  for (let comp = todo.pop(); comp !== undefined; comp = todo.pop()) {
    if (comp === '' || comp === '.') continue;
    if (comp === '..') {
      cur = splitParent(cur)[0];
      continue;
    }
    const next = joinRel(cur, comp);
    const st = lstatIfExists(`${root}/${next}`);
    if (st === undefined || !st.isSymbolicLink()) {
      cur = next;
      continue;
    }
    if (++hops > MAX_SYMLINK_HOPS) {
      throw new HutchError(
        'ROOTFS_SYMLINK_LOOP',
        `cannot resolve ${path} in the container's root filesystem: too many levels of symbolic links`,
        { hint: 'The image has a symbolic link loop on that path: fix or rebuild the image.', exitCode: 126 },
      );
    }
    const target = readlinkSync(`${root}/${next}`);
    if (target.startsWith('/')) cur = '';
    todo.push(...target.split('/').reverse());
  }
  return cur;
}

/**
 * The text of the regular file at `path` inside `rootfs`, or undefined when
 * there is none. The last component is opened without following links and
 * the opened file's real path is checked to lie in rootfs, so a link swapped
 * in between resolving and opening cannot lead out of it.
 */
export function readFileInRoot(rootfs: string, path: string): string | undefined {
  const { root, host } = resolveWithRoot(rootfs, path);
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted at the path must not hang the engine.
    fd = openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') throw changed(path);
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new HutchError(
        'ROOTFS_NOT_A_FILE',
        `${path} in the container's root filesystem is not a regular file`,
        {
          hint: 'The image is damaged or hostile: fix or rebuild it.',
          exitCode: 126,
        },
      );
    }
    if (st.size > MAX_READ_BYTES) {
      throw new HutchError(
        'ROOTFS_FILE_TOO_BIG',
        `${path} in the container's root filesystem is ${st.size} bytes`,
        {
          hint: `hutch reads at most ${MAX_READ_BYTES} bytes of it: the image is damaged or hostile.`,
          exitCode: 126,
        },
      );
    }
    const real = openedPath(fd);
    if (real !== undefined && !real.startsWith(root === '/' ? '/' : `${root}/`)) throw changed(path);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** What the kernel says `fd` is; undefined without /proc (the check is a second line of defence). */
function openedPath(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

function changed(path: string): HutchError {
  return new HutchError(
    'ROOTFS_CHANGED',
    `${path} in the container's root filesystem changed while it was being read`,
    { hint: 'Something is modifying the container while it is being set up: try again.', exitCode: 126 },
  );
}
