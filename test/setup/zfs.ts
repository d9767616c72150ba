/**
 * A real ZFS for the zfs driver's tests: Debian's zfs-fuse daemon and a
 * pool on a sparse file, as a user trying ZFS without a spare disk would
 * have it:
 *
 *   /var/tmp/hutch-test-zfs.img   1 GiB, sparse: costs what the tests write
 *   hutchtest                     the pool, mounted nowhere (-m none)
 *   hutchtest/hutch               the parent dataset tests make theirs under
 *
 * Idempotent and quick when everything is there: a running daemon is
 * reused (its pid is recorded in the test state directory), an imported
 * pool too; a pool file from an earlier boot is imported again. Run as
 * root by test/runner.ts, which passes the dataset in HUTCH_TEST_ZFS.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ZFS_IMAGE = '/var/tmp/hutch-test-zfs.img';
export const ZFS_POOL = 'hutchtest';
export const ZFS_DATASET = `${ZFS_POOL}/hutch`;

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: r.status === 0, out: (r.stderr || r.stdout || r.error?.message || '').trim() };
}

function must(cmd: string, args: string[]): void {
  const r = run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.out}`);
}

function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'zfs-fuse';
  } catch {
    return false;
  }
}

/** The daemon answers when `zpool list` does; it needs a moment after starting. */
function answering(): boolean {
  return run('zpool', ['list', '-H']).ok;
}

function ensureDaemon(stateDir: string, log: (m: string) => void): void {
  const pidFile = join(stateDir, 'zfs-fuse.pid');
  const recorded = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
  if ((recorded > 0 && alive(recorded)) || answering()) {
    log('zfs-fuse: reused the running daemon');
    return;
  }
  if (!existsSync('/dev/fuse')) throw new Error('/dev/fuse is missing');
  // A pid file left by a daemon that is gone (a reboot, a kill) makes zfs-fuse refuse to start.
  rmSync(pidFile, { force: true });
  // Daemonizes itself and writes its pid; kstats would need a mount of their own.
  must('zfs-fuse', ['--pidfile', pidFile, '--no-kstat-mount']);
  for (let i = 0; i < 50 && !answering(); i++)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  if (!answering()) throw new Error('zfs-fuse started but does not answer zpool list');
  log(`zfs-fuse: started (pid ${readFileSync(pidFile, 'utf8').trim()})`);
}

function ensurePool(log: (m: string) => void): void {
  if (run('zpool', ['list', '-H', ZFS_POOL]).ok) return;
  if (existsSync(ZFS_IMAGE) && run('zpool', ['import', '-d', '/var/tmp', ZFS_POOL]).ok) {
    log(`zfs: imported ${ZFS_POOL} from ${ZFS_IMAGE}`);
    return;
  }
  must('truncate', ['-s', '1G', ZFS_IMAGE]);
  must('zpool', ['create', '-f', '-m', 'none', ZFS_POOL, ZFS_IMAGE]);
  log(`zfs: created ${ZFS_POOL} on ${ZFS_IMAGE}`);
}

/** Starts what is missing and returns the parent dataset; throws with the reason when this machine cannot. */
export function ensureTestZfs(stateDir: string, log: (m: string) => void): string {
  ensureDaemon(stateDir, log);
  ensurePool(log);
  if (!run('zfs', ['list', '-H', ZFS_DATASET]).ok) {
    // What the driver's own hint says for zfs-fuse: lz4, xattr=sa and acltype do not exist there.
    must('zfs', ['create', '-o', 'compression=on', ZFS_DATASET]);
  }
  writeFileSync(join(stateDir, 'zfs-dataset'), `${ZFS_DATASET}\n`);
  return ZFS_DATASET;
}
