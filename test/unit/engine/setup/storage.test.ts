/**
 * hutch setup's storage step, from recorded outputs of machines with other
 * disk layouts: what it finds, what it would do, and that it never guesses.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { describeLayout, layoutOf, mdRaid, zpoolVdevs } from '../../../../src/host/disks.ts';
import type { Probe } from '../../../../src/host/disks.ts';
import { storageSteps } from '../../../../src/engine/setup/storage.ts';
import type { SetupTarget } from '../../../../src/engine/setup/types.ts';
import { tempDir } from '../../../support/temp.ts';

const STORE = '/home/ann/.local/share/hutch';

function findmnt(
  target: string,
  source: string,
  fstype: string,
  options: string,
  uuid: string | null,
): string {
  return JSON.stringify({ filesystems: [{ target, source, fstype, options, uuid }] });
}

/** A machine as its commands printed it: command line → stdout (a missing one failed). */
function recorded(outputs: Record<string, string>, files: Record<string, string> = {}): Probe {
  return {
    run: (cmd, args) => outputs[[cmd, ...args].join(' ')],
    read: (path) => files[path],
  };
}

const findmntCmd = (p: string): string => `findmnt -J -T ${p} -o TARGET,SOURCE,FSTYPE,OPTIONS,UUID`;

function target(fstab = ''): SetupTarget {
  const root = tempDir();
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/fstab'), fstab);
  return {
    user: { name: 'ann', uid: 1000, gid: 1000, home: '/home/ann' },
    hostRoot: root,
    live: false,
    store: STORE,
  };
}

const BTRFS_UUID = '3c0a2f5e-6a1d-4c1f-9a51-0d0f4a3b8e21';
const btrfsSingle = recorded({
  [findmntCmd(STORE)]: findmnt(
    '/home',
    '/dev/nvme0n1p3[/@home]',
    'btrfs',
    'rw,noatime,compress=zstd:3,ssd,space_cache=v2,subvolid=257,subvol=/@home',
    BTRFS_UUID,
  ),
  'btrfs filesystem show /home': `Label: 'fedora'  uuid: ${BTRFS_UUID}\n\tTotal devices 1 FS bytes used 211.45GiB\n\tdevid    1 size 475.35GiB used 230.02GiB path /dev/nvme0n1p3\n`,
  'btrfs filesystem df /home':
    'Data, single: total=221.01GiB, used=205.32GiB\nSystem, DUP: total=8.00MiB, used=48.00KiB\nMetadata, DUP: total=4.50GiB, used=3.06GiB\n',
});
const btrfsRaid1 = recorded({
  [findmntCmd(STORE)]: findmnt(
    '/',
    '/dev/sda2[/@]',
    'btrfs',
    'rw,relatime,space_cache=v2,subvolid=256,subvol=/@',
    null,
  ),
  'btrfs filesystem show /': `Label: none  uuid: 9e1f6c0b-2f4e-4f0a-8d1e-6b1b5a4c2d10\n\tTotal devices 2 FS bytes used 1.20TiB\n\tdevid    1 size 3.64TiB used 1.21TiB path /dev/sda2\n\tdevid    2 size 3.64TiB used 1.21TiB path /dev/sdb2\n`,
  'btrfs filesystem df /':
    'Data, RAID1: total=1.20TiB, used=1.19TiB\nSystem, RAID1: total=32.00MiB, used=208.00KiB\nMetadata, RAID1: total=5.00GiB, used=3.51GiB\n',
});
const ZPOOL_MIRROR = `  pool: tank
 state: ONLINE
  scan: scrub repaired 0B in 01:02:03 with 0 errors on Sun Nov  8 01:26:04 2026
config:

\tNAME                        STATE     READ WRITE CKSUM
\ttank                        ONLINE       0     0     0
\t  mirror-0                  ONLINE       0     0     0
\t    ata-WDC_WD40EFRX-1      ONLINE       0     0     0
\t    ata-WDC_WD40EFRX-2      ONLINE       0     0     0
\tlogs
\t  nvme0n1p4                 ONLINE       0     0     0

errors: No known data errors
`;
const zfsMirror = recorded({
  [findmntCmd(STORE)]: findmnt('/home', 'tank/home', 'zfs', 'rw,relatime,xattr,posixacl', null),
  'zpool status tank': ZPOOL_MIRROR,
});
const MDSTAT = `Personalities : [raid1] [linear] [multipath] [raid0] [raid6] [raid5] [raid4] [raid10]
md0 : active raid1 sdb1[1] sda1[0]
      976630464 blocks super 1.2 [2/2] [UU]
      bitmap: 0/8 pages [0KB], 65536KB chunk

unused devices: <none>
`;
const ext4Md = recorded(
  {
    [findmntCmd(STORE)]: findmnt(
      '/',
      '/dev/md0',
      'ext4',
      'rw,relatime,errors=remount-ro',
      'a1b2c3d4-0000-4000-8000-000000000001',
    ),
  },
  { '/proc/mdstat': MDSTAT },
);
const xfsPlain = recorded({
  [findmntCmd(STORE)]: findmnt(
    '/home',
    '/dev/sdc1',
    'xfs',
    'rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota',
    null,
  ),
});
const nfsHome = recorded({
  [findmntCmd(STORE)]: findmnt('/home', 'files.lan:/export/home', 'nfs4', 'rw,relatime,vers=4.2', null),
});

describe('hutch setup --storage, from recorded layouts', () => {
  it('btrfs on one disk: a subvolume of its own, by UUID in fstab, with nofail and user_subvol_rm_allowed', () => {
    const l = layoutOf(STORE, btrfsSingle);
    assert.equal(describeLayout(l), `btrfs single (UUID ${BTRFS_UUID})`);
    const t = target('UUID=x / btrfs defaults 0 0\n');
    const [step] = storageSteps(t, STORE, btrfsSingle);
    assert.equal(step!.status, 'change');
    assert.match(step!.detail, /subvolume of its own, @hutch-ann/);
    const fstabLine = `UUID=${BTRFS_UUID} ${STORE} btrfs subvol=/@hutch-ann,user_subvol_rm_allowed,noatime,compress=zstd,nofail 0 0`;
    assert.deepEqual(step!.diff, [
      `btrfs subvolume create <top level of UUID=${BTRFS_UUID}>/@hutch-ann`,
      `+ ${t.hostRoot}/etc/fstab: ${fstabLine}`,
      `mount -t btrfs -o subvol=/@hutch-ann,user_subvol_rm_allowed,noatime,compress=zstd,nofail /dev/nvme0n1p3 ${STORE}`,
      `chown 1000:1000 ${STORE}`,
    ]);
  });

  it('btrfs RAID1 over two devices: named as such, the same plan on the filesystem', () => {
    const l = layoutOf(STORE, btrfsRaid1);
    assert.equal(describeLayout(l), 'btrfs raid1 over 2 devices (UUID 9e1f6c0b-2f4e-4f0a-8d1e-6b1b5a4c2d10)');
    const [step] = storageSteps(target(), STORE, btrfsRaid1);
    assert.equal(step!.status, 'change');
    assert.match(
      step!.diff!.join('\n'),
      /UUID=9e1f6c0b-2f4e-4f0a-8d1e-6b1b5a4c2d10 .* btrfs subvol=\/@hutch-ann,/,
    );
  });

  it('ZFS mirror: a dataset with lz4, xattr=sa, posixacl, atime off', () => {
    assert.deepEqual(zpoolVdevs(ZPOOL_MIRROR, 'tank'), ['mirror']);
    const l = layoutOf(STORE, zfsMirror);
    assert.equal(describeLayout(l), 'ZFS dataset tank/home in pool tank (mirror)');
    const [step] = storageSteps(target(), STORE, zfsMirror);
    assert.equal(step!.status, 'change');
    assert.deepEqual(step!.diff, [
      `zfs create -o mountpoint=${STORE} -o compression=lz4 -o xattr=sa -o acltype=posixacl -o atime=off tank/hutch-ann`,
      `chown 1000:1000 ${STORE}`,
    ]);
  });

  it('ext4 on md RAID1 and plain xfs: overlay works, nothing to make', () => {
    assert.deepEqual(mdRaid('/dev/md0', MDSTAT), { level: 'raid1', members: 2 });
    const [md] = storageSteps(target(), STORE, ext4Md);
    assert.equal(md!.status, 'ok');
    assert.match(md!.detail, /ext4 on \/dev\/md0 \(raid1, 2 members\)/);
    const [xfs] = storageSteps(target(), STORE, xfsPlain);
    assert.equal(xfs!.status, 'ok');
    assert.match(xfs!.detail, /xfs on \/dev\/sdc1/);
  });

  it('names what it cannot handle (NFS) and leaves it to the admin', () => {
    const [step] = storageSteps(target(), STORE, nfsHome);
    assert.equal(step!.status, 'manual');
    assert.match(step!.detail, /nfs4 \(files\.lan:\/export\/home\).*local ext4, xfs or btrfs/);
    assert.equal(step!.apply, undefined);
  });

  it('finds its own work done: the subvolume mounted at the store and in fstab', () => {
    const line = `UUID=${BTRFS_UUID} ${STORE} btrfs subvol=/@hutch-ann,user_subvol_rm_allowed,noatime,compress=zstd,nofail 0 0`;
    const done = recorded({
      [findmntCmd(STORE)]: findmnt(
        STORE,
        '/dev/nvme0n1p3[/@hutch-ann]',
        'btrfs',
        'rw,noatime,compress=zstd:3,user_subvol_rm_allowed,subvolid=300,subvol=/@hutch-ann',
        BTRFS_UUID,
      ),
      [`btrfs filesystem show ${STORE}`]: `Label: 'fedora'  uuid: ${BTRFS_UUID}\n\tTotal devices 1 FS bytes used 1GiB\n`,
      [`btrfs filesystem df ${STORE}`]: 'Data, single: total=1GiB, used=1GiB\n',
    });
    const [step] = storageSteps(target(`# hutch setup\n${line}\n`), STORE, done);
    assert.equal(step!.status, 'ok');
  });
});
