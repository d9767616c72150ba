/**
 * Mounting and unmounting through fuse-overlayfs, overlay in user space.
 *
 * A mount is a process: `fuse-overlayfs -o OPTIONS MOUNTPOINT` mounts, then
 * daemonizes (setsid, cwd /) and serves the mount until it is unmounted;
 * the process we spawn exits once the mount is in place. hutch runs it in
 * its own user and mount namespace, where it is root: it mounts with
 * mount(2) directly (no setuid fusermount3) and adds `allow_other` and
 * `default_permissions` by itself, so the container's other users get in
 * and the kernel checks their permissions. No ID mapping options: inside
 * the namespace the files' owners are already the container's.
 *
 * The daemon ends when its mount goes, but only from the namespace that
 * sees it: a daemon whose namespace was left behind (the pause process
 * killed) keeps that namespace alive and serves nobody. Such daemons are
 * found by their command line, which names the mount point under the
 * store (`daemonsUnder`), and ended by pid.
 */
import { readFileSync, readdirSync, statfsSync } from 'node:fs';
import { MNT_DETACH, sys } from '../../sys/native.ts';
import { HutchError, errnoCode } from '../../util/errors.ts';
import { which } from '../../util/which.ts';

export const FUSE_SUPER_MAGIC = 0x65735546;
/** How long a daemon may take to notice its mount went and exit. */
const DAEMON_EXIT_MS = 2000;

export const INSTALL_HINT =
  'Install fuse-overlayfs (Debian and Ubuntu: sudo apt-get install fuse-overlayfs; Fedora: sudo dnf install fuse-overlayfs).';

/** Where fuse-overlayfs is, or undefined (distributions put it in /usr/bin, on every user's PATH). */
export function fuseOverlayfsPath(): string | undefined {
  return which('fuse-overlayfs');
}

function tool(): string {
  const found = fuseOverlayfsPath();
  if (found === undefined) {
    throw new HutchError('FUSE_OVERLAYFS_MISSING', 'the fuse-overlayfs storage driver needs fuse-overlayfs', {
      hint: INSTALL_HINT,
    });
  }
  return found;
}

export interface FuseMount {
  /** Layer directories, top first; relative ones are taken from `cwd`. */
  lower: string[];
  /** Writable layer and its work directory; without them the mount is read-only. */
  upper?: { dir: string; work: string } | undefined;
  /** Absolute: `daemonsUnder` finds the daemon by it. */
  mountPoint: string;
  cwd: string;
  /** Skip fsync: the container's writes need not survive a crash (a --rm container). */
  volatile?: boolean | undefined;
}

/** The `-o` value: fuse-overlayfs reads lowerdir as a `:`-list, top first, as the kernel does. */
export function mountOptions(m: FuseMount): string {
  const opts = [`lowerdir=${m.lower.join(':')}`];
  if (m.upper) opts.push(`upperdir=${m.upper.dir}`, `workdir=${m.upper.work}`);
  if (m.volatile) opts.push('volatile');
  return opts.join(',');
}

export function isFuseMount(path: string): boolean {
  try {
    return statfsSync(path).type === FUSE_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/** A mount whose daemon died: every access fails with ENOTCONN. */
function isDeadMount(path: string): boolean {
  try {
    statfsSync(path);
    return false;
  } catch (e) {
    return errnoCode(e) === 'ENOTCONN';
  }
}

/** Mounts; returns once the mount is in place, or throws with fuse-overlayfs's own words. */
export function mountFuseOverlay(m: FuseMount): void {
  // A daemon killed under a mount leaves it dead: take it off, then mount afresh.
  if (isDeadMount(m.mountPoint)) unmountQuietly(m.mountPoint);
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync(tool(), ['-o', mountOptions(m), m.mountPoint], {
    cwd: m.cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 30_000,
  });
  if (r.status === 0) return;
  const words = (r.stderr ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('unknown argument ignored'))
    .join('; ');
  throw new HutchError(
    'MOUNT',
    `fuse-overlayfs could not mount ${m.mountPoint}: ${words || r.error?.message || `exit ${r.status ?? r.signal}`}`,
    {
      hint: 'Check that /dev/fuse exists and is usable (mode 0666), and run `hutch doctor`.',
    },
  );
}

function unmountQuietly(path: string): void {
  for (let i = 0; i < 16; i++) {
    try {
      sys().umount(path, MNT_DETACH);
    } catch (e) {
      if (errnoCode(e) === 'EINVAL' || errnoCode(e) === 'ENOENT') return;
      throw e;
    }
  }
}

export interface FuseDaemon {
  pid: number;
  mountPoint: string;
}

/** fuse-overlayfs processes whose mount point lies under `dir` (the driver's home). */
export function daemonsUnder(dir: string): FuseDaemon[] {
  const prefix = `${dir.replace(/\/+$/, '')}/`;
  const out: FuseDaemon[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'fuse-overlayfs') continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const mountPoint = argv.at(-1);
      if (mountPoint?.startsWith(prefix)) out.push({ pid, mountPoint });
    } catch {
      // Gone meanwhile, or another user's.
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Waits up to `waitMs` for daemons to exit; returns those still there. */
export function waitForExit(daemons: FuseDaemon[], waitMs: number): FuseDaemon[] {
  const deadline = Date.now() + waitMs;
  let left = daemons.filter((d) => alive(d.pid));
  while (left.length > 0 && Date.now() < deadline) {
    sleepMs(2);
    left = left.filter((d) => alive(d.pid));
  }
  return left;
}

/**
 * Waits for daemons to exit (they do once their mount is gone), then
 * kills those still there. Returns the pids that had to be killed.
 */
export function reapDaemons(daemons: FuseDaemon[], waitMs = DAEMON_EXIT_MS): number[] {
  const left = waitForExit(daemons, waitMs);
  for (const d of left) {
    try {
      process.kill(d.pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }
  return left.map((d) => d.pid);
}

/**
 * Unmounts `mountPoint` and makes sure its daemon is gone: the mount's end
 * stops it, and one that lingers (a file still open through a detached
 * mount, or a daemon that hung) is killed. `home` bounds the search.
 */
export function unmountFuseOverlay(mountPoint: string, home: string): void {
  unmountQuietly(mountPoint);
  reapDaemons(daemonsUnder(home).filter((d) => d.mountPoint === mountPoint));
}

/** Ends every daemon of a store (system migrate and reset, once nothing runs): mounts off, then the processes. */
export function endDaemonsUnder(home: string): void {
  const daemons = daemonsUnder(home);
  for (const d of daemons) unmountQuietly(d.mountPoint);
  reapDaemons(daemons);
}
