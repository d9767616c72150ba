/**
 * `system check` for the volume store: leftovers of killed snapshot,
 * rollback, clone and receive commands (`.tmp-*`, which may hold read-only
 * subvolumes a plain delete cannot remove), snapshot directories without
 * their record or content, and volume directories without a record. All of
 * it is garbage: nothing refers to it, and `--repair` removes it.
 *
 * In a zfs store also the datasets: `.tmp-*` ones whose command is gone, a
 * dataset with a volume's name but no record (a killed create, clone or
 * remove), a ZFS snapshot no record names, and a record whose ZFS
 * snapshot is missing.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SNAPSHOTS_DIR, SNAPSHOT_RECORD } from '../runtime/volume-snapshots.ts';
import { removeTree } from '../runtime/volume-tree.ts';
import { VOLUME_NAME, VolumeStore } from '../runtime/volumes.ts';
import { TEMP_MARK, lstatIfExists, readIfExists } from '../util/fs-atomic.ts';
import type { ZfsVolumes } from '../storage/drivers/zfs-volumes.ts';
import { lockFile } from '../sys/lock.ts';
import type { Finding } from './check.ts';
import type { Context } from './context.ts';

function names(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

export function checkVolumes(ctx: Context, repair: boolean): Finding[] {
  const store = new VolumeStore(ctx.paths.root);
  const found: Finding[] = [];
  const garbage = (what: string, path: string, why = ''): void => {
    if (repair) removeTree(path);
    found.push({ severity: 'garbage', what, detail: why ? `${path}: ${why}` : path, repaired: repair });
  };
  const zfs = store.zfs();
  const sweep = (): void => {
    if (zfs !== undefined) checkDatasets(store, zfs, repair, found);
    for (const n of names(store.dir)) {
      const dir = join(store.dir, n);
      if (n.startsWith(TEMP_MARK)) {
        garbage('temporary file', dir);
        continue;
      }
      if (!VOLUME_NAME.test(n) || !lstatIfExists(dir)?.isDirectory()) continue;
      if (!lstatIfExists(join(dir, 'volume.json'))) {
        // A dataset mounted there is a volume being made or brought back (a store rollback): never deleted as files.
        if (zfs !== undefined && contentMounted(join(dir, '_data'))) continue;
        garbage('volume directory', dir, 'it has no volume.json, so it is no volume');
        continue;
      }
      // A volume whose lock is held is being worked on: its temporary files are someone's work in progress.
      const lock = lockFile(store.volumeLockPath(n), { wait: false });
      if (!lock) continue;
      try {
        const v = zfs !== undefined ? store.find(n) : undefined;
        if (v?.zfs === true && !contentMounted(v.mountpoint)) {
          // A create, clone or receive killed between its record and its mount; the next use mounts it too.
          if (repair) store.ensureContent(v);
          found.push({
            severity: 'garbage',
            what: 'volume content',
            detail: `${v.mountpoint}: the volume's dataset is not mounted there yet`,
            repaired: repair,
          });
        }
        for (const m of names(dir)) if (m.startsWith(TEMP_MARK)) garbage('temporary file', join(dir, m));
        const snaps = join(dir, SNAPSHOTS_DIR);
        for (const s of names(snaps)) {
          const p = join(snaps, s);
          if (s.startsWith(TEMP_MARK)) garbage('temporary file', p);
          else if (zfs !== undefined && zfsSnapshotMissing(zfs, n, p)) {
            garbage('volume snapshot', p, 'its ZFS snapshot is gone (a snapshot nothing can use)');
          } else if (zfs !== undefined && snapshotMethod(p) === 'zfs') {
            continue;
          } else if (!lstatIfExists(join(p, SNAPSHOT_RECORD)) || !lstatIfExists(join(p, '_data'))) {
            garbage('volume snapshot', p, 'it lacks its record or its content (a snapshot nothing can use)');
          }
        }
      } finally {
        lock.release();
      }
    }
  };
  // Under the store's lock: a command making a snapshot or volume right now is not garbage.
  if (lstatIfExists(store.dir)) store.withStoreLock(sweep);
  return found;
}

/** Whether a dataset is mounted on `_data` (its device differs from its directory's). */
function contentMounted(data: string): boolean {
  const here = lstatIfExists(data);
  const dir = lstatIfExists(join(data, '..'));
  return here !== undefined && dir !== undefined && here.dev !== dir.dev;
}

function snapshotMethod(dir: string): string | undefined {
  try {
    return (JSON.parse(readIfExists(join(dir, SNAPSHOT_RECORD)) ?? '{}') as { method?: string }).method;
  } catch {
    return undefined;
  }
}

function zfsSnapshotMissing(zfs: ZfsVolumes, volume: string, dir: string): boolean {
  if (snapshotMethod(dir) !== 'zfs') return false;
  const id = (JSON.parse(readIfExists(join(dir, SNAPSHOT_RECORD)) ?? '{}') as { id?: string }).id;
  return id === undefined || !zfs.snapshotIds(volume).includes(id);
}

/** The datasets side, under the store's lock (every dataset with a volume's name appears under it). */
function checkDatasets(store: VolumeStore, zfs: ZfsVolumes, repair: boolean, found: Finding[]): void {
  const report = (what: string, detail: string): void => {
    found.push({ severity: 'garbage', what, detail, repaired: repair });
  };
  for (const d of zfs.list()) {
    if (d.name.startsWith(TEMP_MARK)) {
      const pid = Number(d.name.split('-').at(-2));
      if (lstatIfExists(`/proc/${pid}`)) continue; // its command is still at work
      if (repair) zfs.destroy(d.name);
      report('volume dataset', `${zfs.dataset(d.name)}: left by a command that was killed`);
      continue;
    }
    if (d.name.startsWith('.kept-')) continue; // a removed volume a store snapshot holds
    const v = store.find(d.name);
    if (v === undefined) {
      if (repair) zfs.destroy(d.name);
      report('volume dataset', `${zfs.dataset(d.name)}: no volume has it (a killed create, clone or remove)`);
      continue;
    }
    const lock = lockFile(store.volumeLockPath(d.name), { wait: false });
    if (!lock) continue;
    try {
      const listed = new Set<string>();
      for (const s of names(join(store.dir, d.name, SNAPSHOTS_DIR))) {
        const text = readIfExists(join(store.dir, d.name, SNAPSHOTS_DIR, s, SNAPSHOT_RECORD));
        try {
          const id = (JSON.parse(text ?? '{}') as { id?: string }).id;
          if (id !== undefined) listed.add(id);
        } catch {
          // An unreadable record is reported by the file sweep.
        }
      }
      for (const id of zfs.snapshotIds(d.name)) {
        if (listed.has(id)) continue;
        if (repair) zfs.destroySnapshot(d.name, id);
        report('volume snapshot', `${zfs.snapshot(d.name, id)}: no snapshot record names it`);
      }
    } finally {
      lock.release();
    }
  }
}
