/**
 * Real btrfs filesystems for the btrfs driver's tests, each a sparse image
 * file on a loop device, as a user with a spare disk would have it:
 *
 *   /mnt/hutch-test-btrfs         2 GiB, mounted with user_subvol_rm_allowed:
 *                                 where the driver works rootless
 *   /mnt/hutch-test-btrfs-strict  256 MiB, mounted without it: where a user
 *                                 may make subvolumes but not delete them
 *
 * Each holds a directory per test user (named by uid, owned by that user).
 * Idempotent: a filesystem already mounted is reused (and given the option it
 * lacks); an image file already made is mounted again after a reboot. Run as
 * root by test/runner.ts, which passes the mount points to the tests in
 * HUTCH_TEST_BTRFS and HUTCH_TEST_BTRFS_STRICT.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statfsSync,
} from 'node:fs';
import { join } from 'node:path';

const BTRFS_MAGIC = 0x9123683e;
const RM_OPTION = 'user_subvol_rm_allowed';

interface TestFs {
  image: string;
  mountPoint: string;
  size: string;
  options: string[];
}

export const BTRFS_FS: TestFs = {
  image: '/var/tmp/hutch-test-btrfs.img',
  mountPoint: '/mnt/hutch-test-btrfs',
  size: '2G',
  options: [RM_OPTION],
};

export const BTRFS_STRICT_FS: TestFs = {
  image: '/var/tmp/hutch-test-btrfs-strict.img',
  mountPoint: '/mnt/hutch-test-btrfs-strict',
  size: '256M',
  options: [],
};

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr || r.stdout || '').trim()}`);
  }
  return r.stdout;
}

/** The options of the btrfs mounted exactly at `dir`, or undefined when none is. */
function mountedOptions(dir: string): string[] | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f[4] !== dir || f[sep + 1] !== 'btrfs') continue;
    return (f[sep + 3] ?? '').split(',');
  }
  return undefined;
}

function isBtrfsImage(file: string): boolean {
  // The superblock sits at 64 KiB, its magic "_BHRfS_M" 0x40 bytes into it.
  const magic = Buffer.alloc(8);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, magic, 0, 8, 0x10040);
  } finally {
    closeSync(fd);
  }
  return magic.toString('latin1') === '_BHRfS_M';
}

function ensureMounted(fs: TestFs, log: (m: string) => void): void {
  mkdirSync(fs.mountPoint, { recursive: true, mode: 0o755 });
  const options = mountedOptions(fs.mountPoint);
  if (options) {
    const missing = fs.options.filter((o) => !options.includes(o));
    if (missing.length > 0) run('mount', ['-o', `remount,${missing.join(',')}`, fs.mountPoint]);
    log(`btrfs at ${fs.mountPoint}: reused`);
    return;
  }
  if (!existsSync(fs.image) || !isBtrfsImage(fs.image)) {
    run('truncate', ['-s', fs.size, fs.image]); // sparse: costs what the tests write
    run('mkfs.btrfs', ['-q', '-f', fs.image]);
  }
  run('mount', ['-o', ['loop', ...fs.options].join(','), fs.image, fs.mountPoint]);
  if (statfsSync(fs.mountPoint).type !== BTRFS_MAGIC)
    throw new Error(`${fs.mountPoint} is not btrfs after mounting`);
  log(
    `btrfs at ${fs.mountPoint}: mounted from ${fs.image}${fs.options.length ? ` with ${fs.options.join(',')}` : ''}`,
  );
}

/** A directory per user, named by uid: tests find theirs as MOUNT/UID. */
function ensureUserDirs(fs: TestFs, users: { uid: number; gid: number }[]): void {
  chmodSync(fs.mountPoint, 0o755);
  for (const u of users) {
    const dir = join(fs.mountPoint, String(u.uid));
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chownSync(dir, u.uid, u.gid);
  }
}

export interface TestBtrfs {
  /** Mounted with user_subvol_rm_allowed. */
  mountPoint: string;
  /** Mounted without it. */
  strictMountPoint: string;
}

/** Makes or reuses both test filesystems; throws with the reason when this machine cannot. */
export function ensureTestBtrfs(users: { uid: number; gid: number }[], log: (m: string) => void): TestBtrfs {
  for (const fs of [BTRFS_FS, BTRFS_STRICT_FS]) {
    ensureMounted(fs, log);
    ensureUserDirs(fs, users);
  }
  return { mountPoint: BTRFS_FS.mountPoint, strictMountPoint: BTRFS_STRICT_FS.mountPoint };
}
