/**
 * `hutch setup --storage` for real, on the loop-device btrfs of the test
 * setup (its fstab in an alternate root, so this machine's is never
 * touched): it makes the user's subvolume, mounts it at the store with
 * user_subvol_rm_allowed, and the test user then runs containers there
 * rootless, on the btrfs driver. Run twice, the second run changes nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HUTCH, runHutch } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const USER = 'hutchtest';
const BTRFS = process.env.HUTCH_TEST_BTRFS;
const uid = Number(spawnSync('id', ['-u', USER], { encoding: 'utf8' }).stdout.trim());
const skip =
  process.getuid!() !== 0
    ? 'runs as root only'
    : !BTRFS
      ? 'no loop-device btrfs from the test setup (HUTCH_TEST_BTRFS)'
      : !(uid > 0)
        ? `needs the user ${USER} that npm test creates`
        : NEEDS_REGISTRY;

const hostRoot = mkdtempSync(join(tmpdir(), 'hutch-setup-storage-'));
const store = BTRFS ? join(BTRFS, String(uid), `setup-store-${process.pid}`) : '';
const subvolume = BTRFS ? join(BTRFS, `@hutch-${USER}`) : '';
const runroot = `/run/user/${uid}/setup-store-${process.pid}`;

function asUser(args: string[]): { status: number; stdout: string; stderr: string } {
  const home = spawnSync('getent', ['passwd', USER], { encoding: 'utf8' }).stdout.split(':')[5];
  const r = spawnSync(
    'runuser',
    [
      '-u',
      USER,
      '--',
      'env',
      '-i',
      `HOME=${home}`,
      `USER=${USER}`,
      'PATH=/usr/bin:/bin',
      `HUTCH_ROOT=${store}`,
      `HUTCH_RUNROOT=${runroot}`,
      HUTCH,
      ...args,
    ],
    { encoding: 'utf8' },
  );
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

after(() => {
  if (skip) return;
  asUser(['system', 'reset', '-f']);
  // The test user's pause process for this run directory, by its pid file, should reset have left it.
  const pidFile = join(runroot, 'pause.pid');
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  rmSync(runroot, { recursive: true, force: true });
  spawnSync('umount', [store]);
  rmSync(store, { recursive: true, force: true });
  if (existsSync(subvolume)) spawnSync('btrfs', ['subvolume', 'delete', subvolume]);
  rmSync(hostRoot, { recursive: true, force: true });
});

describe('hutch setup --storage on a real btrfs', { skip }, () => {
  it('makes the subvolume, mounts it at the store by fstab, and the user runs containers on it rootless', () => {
    mkdirSync(join(hostRoot, 'etc'));
    for (const f of ['passwd', 'group', 'subuid', 'subgid'])
      copyFileSync(`/etc/${f}`, join(hostRoot, 'etc', f));
    const setup = ['setup', '--user', USER, '--host-root', hostRoot, '--storage', '--storage-path', store];
    const dry = runHutch([...setup, '--dry-run'], process.env);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(
      dry.stdout,
      /would +storage: .* is on btrfs single \(UUID [0-9a-f-]{36}\): give the store a subvolume of its own, @hutch-hutchtest/,
    );
    assert.equal(existsSync(subvolume), false, 'a dry run makes nothing');

    const real = runHutch(setup, process.env);
    assert.equal(real.status, 0, real.stderr);
    const fstab = readFileSync(join(hostRoot, 'etc/fstab'), 'utf8');
    assert.match(
      fstab,
      new RegExp(
        `^UUID=[0-9a-f-]{36} ${store} btrfs subvol=/@hutch-hutchtest,user_subvol_rm_allowed,noatime,compress=zstd,nofail 0 0$`,
        'm',
      ),
    );
    const mounted = spawnSync('findmnt', ['-n', '-o', 'SOURCE,OPTIONS', store], { encoding: 'utf8' }).stdout;
    assert.match(mounted, /\[\/@hutch-hutchtest\]/);
    assert.match(mounted, /user_subvol_rm_allowed/);
    assert.equal(statSync(store).uid, uid);

    const again = runHutch([...setup, '--format', 'json'], process.env);
    assert.equal(again.status, 0, again.stderr);
    const storage = (JSON.parse(again.stdout) as { id: string; status: string }[]).find(
      (s) => s.id === 'storage',
    );
    assert.equal(storage?.status, 'ok', 'the second run changes nothing');
    assert.equal(readFileSync(join(hostRoot, 'etc/fstab'), 'utf8'), fstab);

    const img = `${REGISTRY}/busybox:latest`;
    assert.equal(asUser(['pull', '-q', img]).status, 0);
    assert.equal(asUser(['info', '--format', '{{.Store.GraphDriverName}}']).stdout.trim(), 'btrfs');
    const run = asUser(['run', '--rm', '--network', 'none', img, 'echo', 'on the subvolume']);
    assert.equal(run.stdout, 'on the subvolume\n', run.stderr);
    const reset = asUser(['system', 'reset', '-f']);
    assert.equal(reset.status, 0, reset.stderr);

    // --undo unmounts the store and takes the fstab entry out; the subvolume and its data stay.
    const undo = runHutch(['setup', '--user', USER, '--host-root', hostRoot, '--undo'], process.env);
    assert.equal(undo.status, 0, undo.stderr);
    assert.equal(spawnSync('findmnt', [store]).status, 1, 'no longer mounted');
    assert.doesNotMatch(readFileSync(join(hostRoot, 'etc/fstab'), 'utf8'), /@hutch-hutchtest/);
    assert.equal(existsSync(subvolume), true, 'the data stays');
  });
});
