/**
 * The parts of the zfs driver that need no pool: when the driver can work
 * (rootful, a configured dataset that exists, the tool installed) and the
 * words and fix when not; that rootless passes a configured dataset over
 * while a forced zfs is refused; a store's recorded dataset against the
 * configured one; and reading `zfs list`'s lines.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { chooseDriver } from '../../../../src/storage/drivers/index.ts';
import { judgeZfs, storeDataset } from '../../../../src/storage/drivers/zfs-probe.ts';
import type { ZfsFacts } from '../../../../src/storage/drivers/zfs-probe.ts';
import { parseDatasets } from '../../../../src/storage/drivers/zfs-tool.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hutch-zfs-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const facts = (over: Partial<ZfsFacts>): ZfsFacts => ({
  rootless: false,
  dataset: 'tank/hutch',
  toolInstalled: true,
  exists: () => true,
  ...over,
});

describe('judgeZfs', () => {
  const cases: { name: string; facts: Partial<ZfsFacts>; reason?: RegExp; hint?: RegExp }[] = [
    { name: 'works rootful with an existing dataset', facts: {} },
    {
      name: 'is rootful only',
      facts: { rootless: true },
      reason: /created and mounted only by root/,
      hint: /fuse-overlayfs/,
    },
    {
      name: 'needs zfs_dataset',
      facts: { dataset: undefined },
      reason: /no parent dataset is configured/,
      hint: /zfs_dataset = "POOL\/hutch".*zfs create -o compression=lz4 -o xattr=sa -o acltype=posixacl/,
    },
    { name: 'needs the tool', facts: { toolInstalled: false }, reason: /not installed/, hint: /zfs-fuse/ },
    {
      name: 'needs the dataset to exist, and says what zfs-fuse lacks',
      facts: { exists: () => false },
      reason: /tank\/hutch does not exist/,
      hint: /zfs create .* tank\/hutch\. On zfs-fuse \(pool version 23\) lz4, xattr=sa and acltype do not exist: zfs create -o compression=on tank\/hutch/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = judgeZfs(facts(c.facts));
      if (c.reason === undefined) {
        assert.deepEqual(r, { ok: true, dataset: 'tank/hutch' });
        return;
      }
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.match(r.reason, c.reason);
      assert.match(r.hint, c.hint!);
    });
  }
});

describe('choosing zfs', () => {
  it('refuses --storage-driver zfs rootless with a HutchError, writing nothing', () => {
    const store = join(tmp, 'forced');
    mkdirSync(store);
    assert.throws(
      () => chooseDriver('zfs', store, { rootless: true, zfsDataset: 'tank/hutch' }),
      (e: Error & { code?: string; hint?: string }) =>
        e.code === 'ZFS_UNUSABLE' && /rootful only/.test(e.message) && /fuse-overlayfs/.test(e.hint ?? ''),
    );
    assert.deepEqual(readdirSync(store), []);
  });

  it('passes a configured zfs_dataset over rootless, for the automatic choice', () => {
    const store = join(tmp, 'auto');
    mkdirSync(store);
    const driver = chooseDriver(undefined, store, { rootless: true, zfsDataset: 'tank/hutch' });
    assert.notEqual(driver, 'zfs');
  });

  it('refuses a configured dataset other than the one the store recorded, naming both', () => {
    const store = join(tmp, 'recorded');
    mkdirSync(join(store, 'storage', 'zfs'), { recursive: true });
    writeFileSync(join(store, 'storage', 'zfs', 'dataset'), 'tank/hutch\n');
    assert.throws(
      () => storeDataset(store, 'tank/other', false),
      (e: Error & { code?: string; hint?: string }) =>
        e.code === 'ZFS_DATASET_MISMATCH' &&
        /keeps its layers in the dataset tank\/hutch, not tank\/other/.test(e.message) &&
        /zfs_dataset = "tank\/hutch"/.test(e.hint ?? ''),
    );
  });
});

describe('parseDatasets', () => {
  it('reads names, origins, mount points, mounted and the removed mark', () => {
    const text =
      'tank/hutch\t-\tnone\tno\t-\n' +
      'tank/hutch/layers/b\ttank/hutch/layers/a@hutch\t/s/layers/b\tyes\t-\n' +
      'tank/hutch/layers/a\t-\t/s/layers/a\tno\t1\n';
    assert.deepEqual(parseDatasets(text), [
      { name: 'tank/hutch', origin: undefined, mountpoint: 'none', mounted: false, removed: false },
      {
        name: 'tank/hutch/layers/b',
        origin: 'tank/hutch/layers/a@hutch',
        mountpoint: '/s/layers/b',
        mounted: true,
        removed: false,
      },
      {
        name: 'tank/hutch/layers/a',
        origin: undefined,
        mountpoint: '/s/layers/a',
        mounted: false,
        removed: true,
      },
    ]);
  });
});
