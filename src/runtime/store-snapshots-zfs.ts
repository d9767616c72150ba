/**
 * Store snapshots on the zfs driver: the whole store at one moment, and the
 * way back to it.
 *
 *   DATASET@st-<hex>                     one recursive snapshot (`zfs snapshot -r`): every
 *                                        layer, container root and volume dataset in one
 *                                        transaction group, so they agree with each other
 *   ROOT/snapshots/NAME/snapshot.json    the record: the tag, the layers, roots and
 *                                        volumes it holds (written last)
 *   ROOT/snapshots/NAME/images/          image and layer records and blobs, hard-linked
 *                                        (every file there is replaced by rename, never
 *                                        written in place)
 *   ROOT/snapshots/NAME/containers/      container records, specs, logs (copies)
 *   ROOT/snapshots/NAME/networks/        user network definitions
 *   ROOT/snapshots/NAME/volumes/<name>/  volume.json; `_data` only for a volume that is
 *                                        a directory, not a dataset (made before volumes
 *                                        were datasets): a copy
 *
 * What a store snapshot holds must outlive removals: a layer, container
 * root or volume removed after it is retired (layers, roots: hutch:removed,
 * ../storage/drivers/zfs.ts) or kept under `.kept-*` (volumes,
 * ../storage/drivers/zfs-volumes.ts) instead of destroyed, while any
 * `@st-*` snapshot is on it; removing the store snapshot destroys its
 * `@st-*` snapshots, then what no store snapshot holds any more.
 *
 * Rollback, journaled as on btrfs (every step can be done again): the
 * removed datasets the snapshot holds come back, those made since go,
 * roots and volumes are rolled back to the tag (`zfs rollback -r`, which
 * ZFS allows only to the newest snapshot: newer store snapshots are
 * refused, and a volume's own snapshots taken since are lost) where they
 * are mounted, then the records: images, containers and networks as on
 * btrfs, the volumes' in place.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ZfsDriver } from '../storage/drivers/zfs.ts';
import { STORE_SNAP_PREFIX, datasetExists, zfs, zfsOrThrow } from '../storage/drivers/zfs-tool.ts';
import { ZfsVolumes } from '../storage/drivers/zfs-volumes.ts';
import { HutchError } from '../util/errors.ts';
import { TEMP_MARK, readIfExists, writeJsonAtomic } from '../util/fs-atomic.ts';
import { randomHex } from '../util/random.ts';
import {
  ROLLBACK_JOURNAL,
  STORE_SNAPSHOT_RECORD,
  StoreSnapshots,
  copyDir,
  listDir,
} from './store-snapshots.ts';
import type { StoreSnapshotRecord } from './store-snapshots.ts';
import { SNAPSHOTS_DIR, SNAPSHOT_RECORD } from './volume-snapshots.ts';
import { copyTree, exchange, removeTree } from './volume-tree.ts';
import { VOLUME_NAME } from './volumes.ts';

export interface ZfsStoreSnapshotRecord extends StoreSnapshotRecord {
  /** The recursive snapshot's name: DATASET@tag. */
  tag: string;
  /** Volumes kept as datasets (the others, in `volumes`, as copies). */
  datasetVolumes: string[];
}

/** The tags of the store's recursive snapshots (on the parent dataset itself, where `-r` starts). */
export function storeTags(dataset: string): string[] {
  const r = zfs(['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', dataset]);
  const prefix = `${dataset}@${STORE_SNAP_PREFIX}`;
  return r.ok
    ? r.stdout
        .split('\n')
        .filter((l) => l.startsWith(prefix))
        .map((l) => l.slice(dataset.length + 1))
    : [];
}

/** Destroys one store snapshot's `@tag` on every dataset; one already gone is fine. */
function destroyTag(dataset: string, tag: string): void {
  const r = zfs(['destroy', '-r', `${dataset}@${tag}`]);
  if (!r.ok && !/could not find|does not exist/.test(r.error)) {
    zfsOrThrow(['destroy', '-r', `${dataset}@${tag}`], `destroying the store snapshot ${tag}`);
  }
}

export class ZfsStoreSnapshots extends StoreSnapshots {
  private readonly zfsDriver: ZfsDriver;
  private readonly volumeSets: ZfsVolumes;

  constructor(root: string, driver: ZfsDriver) {
    super(root, driver);
    this.zfsDriver = driver;
    this.volumeSets = new ZfsVolumes(driver.dataset);
  }

  private get dataset(): string {
    return this.zfsDriver.dataset;
  }

  /**
   * Also destroys `@st-*` snapshots no record names (a take killed before
   * its record, a removal killed after it) and what they alone held.
   */
  override sweepAbandoned(): void {
    super.sweepAbandoned();
    const named = new Set(this.list().map((r) => (r as ZfsStoreSnapshotRecord).tag));
    let destroyed = false;
    for (const tag of storeTags(this.dataset)) {
      if (named.has(tag)) continue;
      destroyTag(this.dataset, tag);
      destroyed = true;
    }
    if (destroyed) this.releaseUnheld();
  }

  /** Destroys removed datasets that no store snapshot holds any more. */
  private releaseUnheld(): void {
    this.volumeSets.sweepKept();
    this.zfsDriver.sweepAbandoned();
  }

  override take(name: string): StoreSnapshotRecord {
    const stage = this.staging(name);
    mkdirSync(stage, { mode: 0o700 });
    const tag = `${STORE_SNAP_PREFIX}${randomHex(8)}`;
    try {
      copyDir(join(this.root, 'images'), join(stage, 'images'), { link: true });
      copyDir(join(this.root, 'containers'), join(stage, 'containers'));
      copyDir(join(this.root, 'networks'), join(stage, 'networks'));
      const { volumes, datasetVolumes } = this.takeVolumeRecords(join(stage, 'volumes'));
      // One transaction group for every dataset: layers, roots and volumes agree.
      zfsOrThrow(['snapshot', '-r', `${this.dataset}@${tag}`], 'snapshotting the store');
      const images = (
        JSON.parse(readIfExists(join(this.root, 'images', 'images.json')) ?? '{}') as { images?: unknown[] }
      ).images;
      const record: ZfsStoreSnapshotRecord = {
        name,
        created: new Date().toISOString(),
        driver: 'zfs',
        tag,
        layers: [...this.driver.listLayers('image'), ...this.driver.listLayers('shifted')],
        roots: this.zfsDriver.containerRoots(),
        volumes,
        datasetVolumes,
        images: Array.isArray(images) ? images.length : 0,
        containers: listDir(join(this.root, 'containers')).filter((n) => /^[a-f0-9]{64}$/.test(n)).length,
      };
      writeJsonAtomic(join(stage, STORE_SNAPSHOT_RECORD), record);
      renameSync(stage, this.path(name));
      return record;
    } catch (e) {
      removeTree(stage);
      destroyTag(this.dataset, tag);
      throw e;
    }
  }

  /** Every volume's record; the content of those that are directories, copied (datasets are in the tag). */
  private takeVolumeRecords(dst: string): { volumes: string[]; datasetVolumes: string[] } {
    mkdirSync(dst);
    const src = join(this.root, 'volumes');
    const volumes = listDir(src).filter(
      (n) => VOLUME_NAME.test(n) && existsSync(join(src, n, 'volume.json')),
    );
    const datasetVolumes: string[] = [];
    for (const n of volumes) {
      mkdirSync(join(dst, n));
      copyFileSync(join(src, n, 'volume.json'), join(dst, n, 'volume.json'));
      const rec = JSON.parse(readIfExists(join(src, n, 'volume.json')) ?? '{}') as { zfs?: boolean };
      if (rec.zfs === true) datasetVolumes.push(n);
      else copyTree(join(src, n, '_data'), join(dst, n, '_data'), { readOnly: true });
    }
    return { volumes, datasetVolumes };
  }

  override remove(name: string): void {
    const rec = this.get(name) as ZfsStoreSnapshotRecord | undefined;
    // Renamed away first: a killed removal leaves a leftover, and a tag no record names, which the sweep takes.
    const aside = this.staging(`rm-${name}`);
    renameSync(this.path(name), aside);
    if (rec?.tag !== undefined) destroyTag(this.dataset, rec.tag);
    removeTree(aside);
    this.releaseUnheld();
  }

  override rollback(snap: StoreSnapshotRecord): void {
    const rec = snap as ZfsStoreSnapshotRecord;
    const tags = storeTags(this.dataset);
    if (!tags.includes(rec.tag)) {
      throw new HutchError(
        'STORE_SNAPSHOT_BROKEN',
        `store snapshot ${rec.name} lost its ZFS snapshot ${rec.tag}`,
        {
          hint: `Remove it: hutch system snapshot rm ${rec.name}`,
        },
      );
    }
    const newer = this.list().filter((r) => r.created > rec.created && r.name !== rec.name);
    if (newer.length > 0 && this.pendingRollback() !== rec.name) {
      throw new HutchError(
        'STORE_SNAPSHOT_NOT_NEWEST',
        `the store is on ZFS, which rolls back only to the newest snapshot, and ${rec.name} has newer ones: ${newer.map((r) => r.name).join(', ')}`,
        { hint: `Remove them first: hutch system snapshot rm ${newer.map((r) => r.name).join(' ')}` },
      );
    }
    const from = this.path(rec.name);
    writeJsonAtomic(join(this.dir, ROLLBACK_JOURNAL), { name: rec.name, started: new Date().toISOString() });
    const work = this.rollbackWork;
    mkdirSync(work, { recursive: true, mode: 0o700 });
    this.restoreRoots(rec);
    for (const id of rec.layers) {
      if (!this.driver.hasLayer(id) && !this.zfsDriver.reviveRetired('layer', id))
        throw lost(rec, `layer ${id}`);
    }
    this.restoreVolumeDatasets(rec);
    this.restoreImages(from);
    this.swapIn(work, 'containers', join(this.root, 'containers'), (d) =>
      copyDir(join(from, 'containers'), d),
    );
    this.restoreVolumeRecords(from, rec);
    this.swapIn(work, 'networks', join(this.root, 'networks'), (d) => {
      copyDir(join(from, 'networks'), d);
      for (const n of listDir(d)) if (n.endsWith('.leases.json')) rmSync(join(d, n), { force: true });
    });
    const keep = new Set(rec.layers);
    for (const id of [...this.driver.listLayers('image'), ...this.driver.listLayers('shifted')]) {
      if (!keep.has(id)) this.driver.removeLayer(id);
    }
    rmSync(join(this.dir, ROLLBACK_JOURNAL), { force: true });
    removeTree(work);
  }

  /** Roots made since go; those removed since come back; each is rolled back to the tag where it is mounted. */
  private restoreRoots(rec: ZfsStoreSnapshotRecord): void {
    const keep = new Set(rec.roots);
    for (const id of this.zfsDriver.containerRoots()) if (!keep.has(id)) this.driver.removeContainer(id);
    const live = new Set(this.zfsDriver.containerRoots());
    for (const id of rec.roots) {
      if (!live.has(id) && !this.zfsDriver.reviveRetired('root', id))
        throw lost(rec, `the root of container ${id}`);
      zfsOrThrow(
        ['rollback', '-r', `${this.zfsDriver.datasetOf('root', id)}@${rec.tag}`],
        `rolling back container ${id}`,
      );
    }
  }

  /** Volume datasets made since go (a new one of an old name too); kept ones come back; each is rolled back. */
  private restoreVolumeDatasets(rec: ZfsStoreSnapshotRecord): void {
    const keep = new Set(rec.datasetVolumes);
    for (const d of this.volumeSets.list()) {
      if (d.name.startsWith('.')) continue;
      if (!keep.has(d.name) || !datasetExists(this.volumeSets.snapshot(d.name, rec.tag)))
        this.volumeSets.destroy(d.name);
    }
    for (const n of rec.datasetVolumes) {
      const where = this.volumeSets.forStore(n, rec.tag);
      if (where === undefined) throw lost(rec, `volume ${n}`);
      if (where !== n) this.volumeSets.rename(where, n);
      // Rolled back where it is mounted: zfs-fuse remounts it itself, and is unreliable at both unmounted.
      const data = join(this.root, 'volumes', n, '_data');
      if (this.volumeSets.list().find((d) => d.name === n)?.mounted !== true) this.volumeSets.place(n, data);
      zfsOrThrow(['rollback', '-r', this.volumeSets.snapshot(n, rec.tag)], `rolling back volume ${n}`);
    }
  }

  /**
   * The volumes' records as the snapshot has them, each in place (the
   * datasets stay mounted: zfs-fuse is unreliable at mounting again right
   * after a rollback): each record written whole by rename, the copied
   * content of a directory volume exchanged in, the own snapshots whose
   * ZFS snapshot the rollback destroyed (taken after the store snapshot)
   * dropped; volumes made since go (their datasets went before).
   */
  private restoreVolumeRecords(from: string, rec: ZfsStoreSnapshotRecord): void {
    const live = join(this.root, 'volumes');
    const datasets = new Set(rec.datasetVolumes);
    const wanted = new Set(rec.volumes);
    for (const n of listDir(live)) {
      if (!VOLUME_NAME.test(n) || wanted.has(n) || !existsSync(join(live, n, 'volume.json'))) continue;
      const doomed = join(live, `${TEMP_MARK}rollback-${n}-${randomHex(4)}`);
      renameSync(join(live, n), doomed);
      removeTree(doomed);
    }
    for (const n of rec.volumes) {
      const dir = join(live, n);
      mkdirSync(join(dir, '_data'), { recursive: true, mode: 0o755 });
      const tmp = join(dir, `${TEMP_MARK}volume-${randomHex(4)}.json`);
      copyFileSync(join(from, 'volumes', n, 'volume.json'), tmp);
      renameSync(tmp, join(dir, 'volume.json'));
      if (!datasets.has(n)) {
        const fresh = join(dir, `${TEMP_MARK}restore-${randomHex(4)}`);
        copyTree(join(from, 'volumes', n, '_data'), fresh, { readOnly: false });
        exchange(fresh, join(dir, '_data'));
        removeTree(fresh);
        continue;
      }
      const ids = new Set(this.volumeSets.snapshotIds(n, { deferred: true }));
      for (const s of listDir(join(dir, SNAPSHOTS_DIR))) {
        const text = readIfExists(join(dir, SNAPSHOTS_DIR, s, SNAPSHOT_RECORD));
        let r: { method?: string; id?: string } | undefined;
        try {
          r = text === undefined ? undefined : (JSON.parse(text) as { method?: string; id?: string });
        } catch {
          continue; // unreadable: system check reports it
        }
        if (r?.method === 'zfs' && !ids.has(r.id ?? '')) removeTree(join(dir, SNAPSHOTS_DIR, s));
      }
    }
    mkdirSync(join(live, '.locks'), { recursive: true, mode: 0o700 });
    if (!existsSync(join(live, 'volumes.lock')))
      writeFileSync(join(live, 'volumes.lock'), '', { mode: 0o600 });
  }
}

function lost(rec: ZfsStoreSnapshotRecord, what: string): HutchError {
  return new HutchError('STORE_SNAPSHOT_BROKEN', `store snapshot ${rec.name} no longer has ${what}`, {
    hint: `Run hutch system check; remove the snapshot with: hutch system snapshot rm ${rec.name}`,
  });
}
