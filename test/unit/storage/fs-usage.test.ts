/**
 * Reading what btrfs and ZFS tools say about disk use: recorded outputs
 * (btrfs-progs 6.2, compsize 1.5, OpenZFS 2.1 and zfs-fuse), and, where a
 * test dataset is named in HUTCH_TEST_ZFS, the real `zfs get`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBtrfsDu, parseCompsize, parseZfsGet, zfsUsage } from '../../../src/storage/fs-usage.ts';

describe('btrfs filesystem du -s --raw', () => {
  it('reads total, exclusive and shared bytes', () => {
    const text = '     Total   Exclusive  Set shared  Filename\n   2007040       53248     1003520  .\n';
    assert.deepEqual(parseBtrfsDu(text), { referenced: 2007040, exclusive: 53248, shared: 1003520 });
  });
  it('gives nothing for output it does not know', () => {
    assert.equal(parseBtrfsDu('ERROR: cannot check space of .: Operation not permitted\n'), undefined);
  });
});

describe('compsize -b', () => {
  it('reads the TOTAL row into a ratio', () => {
    const text = [
      'Processed 3 files, 3 regular extents (3 refs), 0 inline.',
      'Type       Perc     Disk Usage   Uncompressed Referenced  ',
      'TOTAL       50%     1000000      2000000      2000000     ',
      'zstd        50%     1000000      2000000      2000000     ',
    ].join('\n');
    assert.deepEqual(parseCompsize(text), {
      disk: 1000000,
      uncompressed: 2000000,
      ratio: 2,
      source: 'compsize',
    });
  });
  it('gives nothing without a TOTAL row (no files, or refused)', () => {
    assert.equal(parseCompsize('No files.\n'), undefined);
  });
});

describe('zfs get -Hp compressratio,used,logicalused', () => {
  it('reads bare ratios (newer OpenZFS) and ratios with an x (older ones)', () => {
    for (const ratio of ['1.85', '1.85x']) {
      const text = `compressratio\t${ratio}\nused\t1048576\nlogicalused\t1939865\n`;
      assert.deepEqual(parseZfsGet('tank/hutch', text), {
        dataset: 'tank/hutch',
        used: 1048576,
        logicalUsed: 1939865,
        ratio: 1.85,
      });
    }
  });
  it('estimates logicalused from used and the ratio where the pool is too old to have it', () => {
    assert.equal(parseZfsGet('p/d', 'compressratio\t1.50x\nused\t4096\n')?.logicalUsed, 6144);
  });
});

describe(
  'zfs get on a real dataset',
  {
    skip: process.env.HUTCH_TEST_ZFS
      ? false
      : 'needs a ZFS test dataset named in HUTCH_TEST_ZFS (e.g. a zfs-fuse file-backed pool, as root)',
  },
  () => {
    it('reports used bytes and a ratio of at least 1', () => {
      const u = zfsUsage(process.env.HUTCH_TEST_ZFS!);
      assert.ok(u, 'zfs get failed');
      assert.ok(u.used > 0);
      assert.ok(u.ratio >= 1);
    });
  },
);
