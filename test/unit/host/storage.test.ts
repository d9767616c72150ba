import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseStorageDriver, kernelOverlayVerdict, storeFilesystem } from '../../../src/host/storage.ts';
import type { DriverInput, StorageDriver } from '../../../src/host/storage.ts';
import { specHost } from '../../../src/host/view.ts';

const base: DriverInput = {
  fsType: 'ext4',
  rootless: true,
  kernel: [6, 1, 0],
  selinuxEnforcing: false,
  zfsVersion: undefined,
  probe: undefined,
  fuseOverlayfs: true,
  fuseDevice: true,
};

describe('chooseStorageDriver', () => {
  const cases: Array<{ name: string; input: Partial<DriverInput>; driver: StorageDriver; reason: RegExp }> = [
    {
      name: 'ext4, not probed',
      input: {},
      driver: 'overlay',
      reason: /ext4 \(kernel overlay not test-mounted\)/,
    },
    {
      name: 'ext4, probe worked',
      input: { probe: { ok: true } },
      driver: 'overlay',
      reason: /test mount .* worked/,
    },
    {
      name: 'ext4, probe failed',
      input: { probe: { ok: false, error: 'mount overlay: Invalid argument' } },
      driver: 'fuse-overlayfs',
      reason: /test mount of kernel overlay failed: mount overlay: Invalid argument; fuse-overlayfs/,
    },
    { name: 'xfs', input: { fsType: 'xfs' }, driver: 'overlay', reason: /xfs/ },
    { name: 'btrfs, not tested', input: { fsType: 'btrfs' }, driver: 'overlay', reason: /btrfs/ },
    {
      name: 'btrfs, subvolume test passed',
      input: { fsType: 'btrfs', probe: { ok: true }, btrfs: { ok: true } },
      driver: 'btrfs',
      reason: /may create and delete subvolumes/,
    },
    {
      name: 'btrfs, subvolume test failed',
      input: {
        fsType: 'btrfs',
        probe: { ok: true },
        btrfs: { ok: false, reason: 'no user_subvol_rm_allowed' },
      },
      driver: 'overlay',
      reason: /overlay worked; btrfs is not used: no user_subvol_rm_allowed$/,
    },
    { name: 'tmpfs', input: { fsType: 'tmpfs' }, driver: 'overlay', reason: /tmpfs/ },
    {
      name: 'rootless, kernel 5.10',
      input: { kernel: [5, 10, 0] },
      driver: 'fuse-overlayfs',
      reason: /older than 5\.11/,
    },
    {
      name: 'rootful, kernel 5.10',
      input: { kernel: [5, 10, 0], rootless: false },
      driver: 'overlay',
      reason: /ext4/,
    },
    {
      name: 'rootless, SELinux, kernel 5.12',
      input: { kernel: [5, 12, 0], selinuxEnforcing: true },
      driver: 'fuse-overlayfs',
      reason: /SELinux .* 5\.13/,
    },
    {
      name: 'rootless, SELinux, kernel 5.13',
      input: { kernel: [5, 13, 0], selinuxEnforcing: true },
      driver: 'overlay',
      reason: /ext4/,
    },
    {
      name: 'rootless, ZFS 2.1',
      input: { fsType: 'zfs', zfsVersion: '2.1.11-1' },
      driver: 'fuse-overlayfs',
      reason:
        /OpenZFS 2\.1\.11-1: overlay needs OpenZFS 2\.2, and a rootless user cannot create ZFS datasets/,
    },
    {
      name: 'rootless, ZFS 2.2',
      input: { fsType: 'zfs', zfsVersion: '2.2.0-1' },
      driver: 'overlay',
      reason: /2\.2 or later/,
    },
    {
      name: 'rootful, ZFS 2.1',
      input: { fsType: 'zfs', zfsVersion: '2.1.5', rootless: false },
      driver: 'fuse-overlayfs',
      reason: /needs OpenZFS 2\.2;/,
    },
    {
      name: 'ZFS of unknown version, not probed',
      input: { fsType: 'zfs' },
      driver: 'fuse-overlayfs',
      reason: /unknown version.*no test mount/,
    },
    {
      name: 'ZFS of unknown version, probe worked',
      input: { fsType: 'zfs', probe: { ok: true } },
      driver: 'overlay',
      reason: /worked/,
    },
    { name: 'NFS', input: { fsType: 'nfs' }, driver: 'fuse-overlayfs', reason: /NFS is not suitable/ },
    {
      name: 'NFS even when a probe says yes',
      input: { fsType: 'nfs', probe: { ok: true } },
      driver: 'fuse-overlayfs',
      reason: /NFS/,
    },
    {
      name: 'NFS without fuse-overlayfs',
      input: { fsType: 'nfs', fuseOverlayfs: false },
      driver: 'vfs',
      reason: /fuse-overlayfs is not installed, so hutch falls back to vfs/,
    },
    {
      name: 'NFS without /dev/fuse',
      input: { fsType: 'nfs', fuseDevice: false },
      driver: 'vfs',
      reason: /\/dev\/fuse is not usable/,
    },
    {
      name: 'overlay (inside a container)',
      input: { fsType: 'overlay' },
      driver: 'fuse-overlayfs',
      reason: /inside a container/,
    },
    {
      name: 'unknown filesystem, not probed',
      input: { fsType: 'reiserfs' },
      driver: 'fuse-overlayfs',
      reason: /untested/,
    },
    {
      name: 'unknown filesystem, probed',
      input: { fsType: 'reiserfs', probe: { ok: true } },
      driver: 'overlay',
      reason: /untested, and a test mount/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = chooseStorageDriver({ ...base, ...c.input });
      assert.equal(r.driver, c.driver, r.reason);
      assert.match(r.reason, c.reason);
    });
  }
  it('the verdict alone', () => {
    assert.equal(kernelOverlayVerdict({ ...base, fsType: undefined }).possible, 'maybe');
    assert.equal(kernelOverlayVerdict({ ...base, fsType: 'cifs' }).possible, 'no');
  });
});

describe('storeFilesystem', () => {
  const host = specHost({
    stat: { '/home/alice': { mode: '040700', uid: 1000 } },
    statfs: { '/': 'ext4', '/home': 'nfs' },
  });
  it('checks the nearest existing ancestor', () => {
    assert.deepEqual(storeFilesystem(host, '/home/alice/.local/share/hutch'), {
      checkedPath: '/home/alice',
      fsType: 'nfs',
    });
    assert.deepEqual(storeFilesystem(host, '/var/lib/hutch/'), { checkedPath: '/', fsType: 'ext4' });
  });
});
