/**
 * How a new store's driver is chosen (storage/drivers/choice.ts), with the
 * tests faked: which tests run for each outcome (a subvolume or a mount
 * costs milliseconds, so none is made once the answer is known), ZFS by
 * its version, and the words `hutch info` and the log give. Then the real
 * refusal of a forced fuse-overlayfs where it cannot work, and the
 * options a mount gets.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { chooseAutomatically } from '../../../../src/storage/drivers/choice.ts';
import type { ChoiceTests } from '../../../../src/storage/drivers/choice.ts';
import { mountOptions } from '../../../../src/storage/drivers/fuse-overlayfs-tool.ts';
import { fuseDeviceProblem } from '../../../../src/storage/drivers/fuse-overlayfs-probe.ts';
import { chooseDriver, zfsVersionAt } from '../../../../src/storage/drivers/index.ts';

interface Host {
  btrfs?: boolean;
  zfs?: string;
  overlay?: boolean;
  fuse?: boolean;
}

/** Fakes of the real tests, recording which ran. */
function fake(h: Host): { tests: ChoiceTests; ran: string[] } {
  const ran: string[] = [];
  const tests: ChoiceTests = {
    btrfs: () => (ran.push('btrfs'), h.btrfs ?? false),
    zfsVersion: () => (ran.push('zfs'), h.zfs),
    overlay: () => (ran.push('overlay'), h.overlay ?? false),
    fuseOverlayfs: () => (
      ran.push('fuse'),
      h.fuse ? { ok: true } : { ok: false, reason: '/dev/fuse cannot be opened', hint: 'chmod' }
    ),
  };
  return { tests, ran };
}

const TABLE: { name: string; host: Host; driver: string; ran: string[]; reason: RegExp }[] = [
  {
    name: 'btrfs that lets the user delete subvolumes',
    host: { btrfs: true, overlay: true, fuse: true },
    driver: 'btrfs',
    ran: ['btrfs'],
    reason: /may create and delete subvolumes/,
  },
  {
    name: 'a kernel that mounts overlay rootless',
    host: { overlay: true, fuse: true },
    driver: 'overlay',
    ran: ['btrfs', 'zfs', 'overlay'],
    reason: /test mount of kernel overlay worked/,
  },
  {
    name: 'a kernel that does not (Linux < 5.11), with fuse-overlayfs',
    host: { overlay: false, fuse: true },
    driver: 'fuse-overlayfs',
    ran: ['btrfs', 'zfs', 'overlay', 'fuse'],
    reason: /kernel overlay failed; fuse-overlayfs works/,
  },
  {
    name: 'neither overlay nor a usable /dev/fuse',
    host: { overlay: false, fuse: false },
    driver: 'vfs',
    ran: ['btrfs', 'zfs', 'overlay', 'fuse'],
    reason: /fuse-overlayfs cannot be used: \/dev\/fuse cannot be opened/,
  },
  {
    name: 'OpenZFS 2.1: overlay is not even tried, fuse-overlayfs is used',
    host: { zfs: '2.1.11-1', overlay: true, fuse: true },
    driver: 'fuse-overlayfs',
    ran: ['btrfs', 'zfs', 'fuse'],
    reason: /OpenZFS 2\.1\.11-1, and kernel overlay needs OpenZFS 2\.2; fuse-overlayfs works/,
  },
  {
    name: 'OpenZFS 2.1 without fuse-overlayfs: vfs, saying both',
    host: { zfs: '2.1.5', fuse: false },
    driver: 'vfs',
    ran: ['btrfs', 'zfs', 'fuse'],
    reason: /needs OpenZFS 2\.2; fuse-overlayfs cannot be used/,
  },
  {
    name: 'OpenZFS 2.2 where the test mount works: overlay',
    host: { zfs: '2.2.2-0ubuntu9', overlay: true, fuse: true },
    driver: 'overlay',
    ran: ['btrfs', 'zfs', 'overlay'],
    reason: /OpenZFS 2\.2\.2-0ubuntu9 and a test mount of kernel overlay worked/,
  },
  {
    name: 'ZFS of unknown version: the test mount decides',
    host: { zfs: '', overlay: false, fuse: true },
    driver: 'fuse-overlayfs',
    ran: ['btrfs', 'zfs', 'overlay', 'fuse'],
    reason: /kernel overlay failed/,
  },
];

describe('automatic driver choice', () => {
  for (const t of TABLE) {
    it(t.name, () => {
      const { tests, ran } = fake(t.host);
      const choice = chooseAutomatically(tests);
      assert.equal(choice.driver, t.driver);
      assert.deepEqual(ran, t.ran, 'only the tests that could change the answer run');
      assert.match(choice.reason, t.reason);
    });
  }
});

describe('fuse-overlayfs forced, and its mounts', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'hutch-fuse-unit-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('names a missing /dev/fuse and an unopenable one, each with its fix', () => {
    const gone = fuseDeviceProblem(join(tmp, 'no-such-device'));
    assert.match(gone?.reason ?? '', /does not exist/);
    assert.match(gone?.hint ?? '', /modprobe fuse/);
    const dir = join(tmp, 'a-directory');
    mkdirSync(dir, { mode: 0o000 });
    if (process.getuid!() !== 0) {
      assert.match(fuseDeviceProblem(dir)?.hint ?? '', /chmod 0666/);
    }
  });

  it('refuses --storage-driver fuse-overlayfs without fuse-overlayfs, with the install command, writing nothing', () => {
    const store = join(tmp, 'forced');
    mkdirSync(store);
    const path = process.env.PATH;
    process.env.PATH = join(tmp, 'empty-bin');
    try {
      assert.throws(
        () => chooseDriver('fuse-overlayfs', store, { rootless: true }),
        (e: Error & { code?: string; hint?: string }) =>
          e.code === 'FUSE_OVERLAYFS_UNUSABLE' &&
          /fuse-overlayfs storage driver cannot work here/.test(e.message) &&
          /apt-get install fuse-overlayfs/.test(e.hint ?? ''),
      );
    } finally {
      process.env.PATH = path;
    }
    assert.deepEqual(readdirSync(store), []);
  });

  it('takes ZFS by its statfs type only: elsewhere there is no version to read', () => {
    assert.equal(zfsVersionAt(join(tmp, 'not/made/yet')), undefined);
  });

  it('gives lower layers top first, and an upper pair only for a writable mount', () => {
    const base = { lower: ['l/A', 'l/B'], mountPoint: '/s/containers/x/merged', cwd: '/s' };
    assert.equal(mountOptions(base), 'lowerdir=l/A:l/B');
    assert.equal(
      mountOptions({ ...base, upper: { dir: '/s/c/diff', work: '/s/c/work' }, volatile: true }),
      'lowerdir=l/A:l/B,upperdir=/s/c/diff,workdir=/s/c/work,volatile',
    );
  });
});
