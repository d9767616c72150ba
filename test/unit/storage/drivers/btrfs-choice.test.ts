/**
 * The parts of the btrfs driver that need no btrfs: the probe's verdict off
 * btrfs (the store path named, the way out given, nothing left behind), a
 * forced choice refused before anything is written, and which staged layers
 * count as abandoned (their process is gone).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { probeBtrfs } from '../../../../src/storage/drivers/btrfs-probe.ts';
import { chooseDriver } from '../../../../src/storage/drivers/index.ts';
import { DriverLayout } from '../../../../src/storage/drivers/layout.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hutch-btrfs-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const tmpIsBtrfs = statfsSync(tmp).type === 0x9123683e;

describe('btrfs probe and choice off btrfs', { skip: tmpIsBtrfs && `${tmpdir()} is on btrfs` }, () => {
  it('says the store is not on btrfs, naming its filesystem and the way out', () => {
    const store = join(tmp, 'not/made/yet');
    const r = probeBtrfs(store, true);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.reason, new RegExp(`^${store} is on \\S+, not btrfs$`));
    assert.match(r.hint, /HUTCH_ROOT/);
  });

  it('refuses --storage-driver btrfs with a HutchError, writing nothing', () => {
    const store = join(tmp, 'forced');
    mkdirSync(store);
    assert.throws(
      () => chooseDriver('btrfs', store, { rootless: true }),
      (e: Error & { code?: string; hint?: string }) =>
        e.code === 'BTRFS_UNUSABLE' && /not btrfs/.test(e.message) && /storage-driver/.test(e.hint ?? ''),
    );
    assert.deepEqual(readdirSync(store), []);
  });
});

describe('staged layers', () => {
  it('are abandoned when their process is gone, kept while it lives; finished layers are never counted', () => {
    const layout = new DriverLayout(join(tmp, 'store'), 'vfs');
    const hex = 'c'.repeat(64);
    const ended = spawnSync('true').pid!;
    const dead = `.tmp-${hex}-${ended}-abc123`;
    const deadShifted = `.tmp-${hex}-${'d'.repeat(16)}-${ended}-abc123`;
    const live = `.tmp-${hex}-${process.pid}-abc123`;
    for (const n of [dead, deadShifted, live, hex]) mkdirSync(join(layout.layers, n));
    assert.deepEqual(layout.abandonedStaging().sort(), [dead, deadShifted].sort());
    assert.ok(layout.stagingPath(hex).startsWith(join(layout.layers, `.tmp-${hex}-${process.pid}-`)));
  });
});
