/**
 * The in-process system calls of native/sys.c (see ARCHITECTURE.md, "Native
 * code"). Loaded on first use, so commands that need none never pay for it.
 */
import { join } from 'node:path';
import { HutchError, errnoCode } from '../util/errors.ts';
import { packageRoot } from './native-paths.ts';

export interface SysBinding {
  flock(fd: number, exclusive: boolean, wait: boolean): boolean;
  unlock(fd: number): void;
  mount(
    source: string | null,
    target: string,
    fstype: string | null,
    flags: number,
    data: string | null,
  ): void;
  umount(target: string, flags: number): void;
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  lremovexattr(path: string, name: string): void;
  /** A connected SOCK_SEQPACKET unix socket (conmon's attach socket), blocking. */
  connectSeqpacket(path: string): number;
  shutdownWrite(fd: number): void;
  shutdownBoth(fd: number): void;
  /** Swaps two paths atomically (renameat2 RENAME_EXCHANGE); EINVAL where the filesystem cannot. */
  exchange(a: string, b: string): void;
  /** A new network namespace with loopback up, bound at path (an existing file). */
  newNetns(path: string): void;
  /**
   * Starts FILE with ARGV (argv[0] included) and ENV ("K=V" strings); fds[i]
   * becomes the child's fd i, a negative entry /dev/null. Signals start at
   * their defaults. Returns the pid: reap it with waitpid.
   */
  spawn(file: string, argv: string[], env: string[], fds: number[]): number;
  /** A pipe, both ends close-on-exec: [read, write]. */
  pipe(): [number, number];
  /** The child's exit code (128 + signal if killed), or null while it runs; never blocks. */
  waitpid(pid: number): number | null;
  isatty(fd: number): boolean;
}

let binding: SysBinding | undefined;

export function sys(): SysBinding {
  if (binding) return binding;
  const file = join(packageRoot(), 'native/build/hutch_sys.node');
  try {
    // process.dlopen, not require: node:module costs about a millisecond to load.
    const addon = { exports: {} };
    process.dlopen(addon, file);
    binding = addon.exports as SysBinding;
  } catch (e) {
    throw new HutchError('NATIVE_MISSING', `cannot load ${file}: ${(e as Error).message}`, {
      hint: `Build hutch's native parts: sh ${join(packageRoot(), 'native/build.sh')} (needs gcc).`,
    });
  }
  return binding;
}

/** Mount flags from <sys/mount.h> that hutch uses. */
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  BIND: 0x1000,
  REC: 0x4000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
} as const;

export const MNT_DETACH = 0x2;

/**
 * Takes every mount off `path`, detached (mounts stack; 16 is more than
 * hutch ever puts on one point). A path with no mount, or no path, is fine.
 */
export function unmountEvery(path: string): void {
  for (let i = 0; i < 16; i++) {
    try {
      sys().umount(path, MNT_DETACH);
    } catch (e) {
      if (errnoCode(e) === 'EINVAL' || errnoCode(e) === 'ENOENT') return;
      throw e;
    }
  }
}
