/**
 * Snapshots of named volumes, kept beside the volume they belong to:
 *
 *   ROOT/volumes/NAME/snapshots/SNAP/_data           the content as it was
 *   ROOT/volumes/NAME/snapshots/SNAP/snapshot.json   the record
 *
 * On btrfs `_data` is a read-only snapshot subvolume; elsewhere a reflink
 * copy, or a plain one. A snapshot appears by one rename of a complete
 * `.tmp-*` directory, so listings never see half of one; a rollback builds
 * the restored tree beside the volume's content and exchanges the two in
 * one step (./volume-tree.ts), so the volume holds the old content or the
 * restored one, never a mix. All of it under the volume's own lock.
 *
 * A volume whose content is a ZFS dataset (a zfs store's) keeps its
 * snapshots as ZFS snapshots instead, `DATASET/volumes/NAME@ID`, and its
 * snapshot directories hold only the record, written last: a snapshot
 * whose record never arrived is garbage for `system check`. Rollback is
 * `zfs rollback`, a clone `zfs clone` (../storage/drivers/zfs-volumes.ts).
 *
 * Whether containers use the volume is the engine's question, not this file's.
 */
import { chmodSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { newerSnapshotsError } from '../storage/drivers/zfs-volumes.ts';
import type { ZfsVolumes } from '../storage/drivers/zfs-volumes.ts';
import { join } from 'node:path';
import { HutchError } from '../util/errors.ts';
import { TEMP_MARK, lstatIfExists, readIfExists, writeJsonAtomic } from '../util/fs-atomic.ts';
import { log } from '../util/log.ts';
import { randomHex } from '../util/random.ts';
import { treeDigest, treeSize } from './volume-digest.ts';
import { copyTree, exchange, removeTree } from './volume-tree.ts';
import type { CopyMethod } from './volume-tree.ts';
import { VOLUME_NAME, noSuchVolume, parseVolumeOptions, validateVolumeName } from './volumes.ts';
import type { VolumeRecord, VolumeStore } from './volumes.ts';

export const SNAPSHOTS_DIR = 'snapshots';
export const SNAPSHOT_RECORD = 'snapshot.json';

export interface SnapshotRecord {
  name: string;
  volume: string;
  /** Random, kept by send and receive: two stores' snapshots with the same id hold the same content. */
  id: string;
  /** ISO 8601. */
  created: string;
  method: CopyMethod;
  /** Bytes of content when it was taken. */
  size: number;
  /** The content digest (./volume-digest.ts), recorded once something needed it: snapshots never change. */
  digest?: string;
  /** Whether the volume had had the image's content copied in (a clone inherits it). */
  copiedUp?: boolean;
  /** Set on a snapshot made by receive: which stream made it. */
  received?: { from?: string; format: 'tar' | 'btrfs' | 'zfs' };
}

function badSnapshotName(name: string): HutchError {
  return new HutchError(
    'BAD_SNAPSHOT_NAME',
    `"${name}" is not a valid snapshot name: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed`,
  );
}

export function validateSnapshotName(name: string): void {
  if (!VOLUME_NAME.test(name) || name.length > 255) throw badSnapshotName(name);
}

export function noSuchSnapshot(volume: string, snap: string): HutchError {
  return new HutchError('NO_SUCH_SNAPSHOT', `volume ${volume} has no snapshot ${snap}`, {
    hint: `See its snapshots with: hutch volume snapshots ${volume}`,
  });
}

/** Only plain volumes hold content of hutch's: a tmpfs is empty between runs, a bind volume is the host's directory. */
export function snapshottable(v: VolumeRecord): void {
  const kind = parseVolumeOptions(v.options).kind;
  if (kind === 'plain') return;
  throw new HutchError(
    'VOLUME_NOT_SNAPSHOTTABLE',
    `volume ${v.name} is a ${kind} volume: it has no content of hutch's to snapshot`,
    {
      hint:
        kind === 'tmpfs'
          ? 'A tmpfs volume starts empty at every container start.'
          : 'A bind volume is a host directory: snapshot that filesystem with its own tools.',
    },
  );
}

export class VolumeSnapshots {
  readonly volumes: VolumeStore;

  constructor(volumes: VolumeStore) {
    this.volumes = volumes;
  }

  dir(volume: string): string {
    return join(this.volumes.dir, volume, SNAPSHOTS_DIR);
  }

  path(volume: string, snap: string): string {
    return join(this.dir(volume), snap);
  }

  dataOf(volume: string, snap: string): string {
    return join(this.path(volume, snap), '_data');
  }

  private read(volume: string, snap: string): SnapshotRecord | undefined {
    if (!VOLUME_NAME.test(snap)) return undefined;
    const text = readIfExists(join(this.path(volume, snap), SNAPSHOT_RECORD));
    if (text === undefined) return undefined;
    try {
      return { ...(JSON.parse(text) as SnapshotRecord), name: snap, volume };
    } catch {
      throw new HutchError(
        'SNAPSHOT_CORRUPT',
        `the record of snapshot ${snap} of volume ${volume} is unreadable`,
        {
          hint: `Remove it with: hutch volume snapshot rm ${volume} ${snap}`,
        },
      );
    }
  }

  find(volume: string, snap: string): SnapshotRecord | undefined {
    return this.read(volume, snap);
  }

  get(volume: string, snap: string): SnapshotRecord {
    const r = this.read(volume, snap);
    if (!r) throw noSuchSnapshot(volume, snap);
    return r;
  }

  /** A volume's snapshots, oldest first; `.tmp-*` leftovers and unreadable records are skipped. */
  list(volume: string): SnapshotRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir(volume));
    } catch {
      return [];
    }
    const out: SnapshotRecord[] = [];
    for (const n of names) {
      try {
        const r = this.read(volume, n);
        if (r) out.push(r);
      } catch (e) {
        log.warn(`skipping snapshot ${n} of volume ${volume}: ${(e as Error).message}`);
      }
    }
    return out.sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
  }

  count(volume: string): number {
    return this.list(volume).length;
  }

  /** The volume, checked to exist and to be snapshottable; for use under its lock. */
  volume(name: string): VolumeRecord {
    const v = this.volumes.find(name);
    if (!v) throw noSuchVolume(name);
    snapshottable(v);
    return v;
  }

  private refuseTaken(volume: string, snap: string): void {
    if (lstatIfExists(this.path(volume, snap))) {
      throw new HutchError('SNAPSHOT_EXISTS', `volume ${volume} already has a snapshot ${snap}`, {
        hint: `Give another name, or remove it first: hutch volume snapshot rm ${volume} ${snap}`,
      });
    }
  }

  /** A fresh `.tmp-*` directory among the volume's snapshots, to build one in. */
  staging(volume: string, what: string): string {
    mkdirSync(this.dir(volume), { recursive: true, mode: 0o700 });
    const tmp = join(this.dir(volume), `${TEMP_MARK}${what}-${process.pid}-${randomHex(4)}`);
    mkdirSync(tmp, { mode: 0o700 });
    return tmp;
  }

  /** Writes the record into a staged snapshot and renames it into place. */
  publish(tmp: string, rec: SnapshotRecord): SnapshotRecord {
    this.refuseTaken(rec.volume, rec.name);
    writeJsonAtomic(join(tmp, SNAPSHOT_RECORD), rec);
    renameSync(tmp, this.path(rec.volume, rec.name));
    return rec;
  }

  /** Takes a snapshot of the volume's content now. */
  create(volume: string, snap: string): SnapshotRecord {
    validateSnapshotName(snap);
    return this.volumes.withVolumeLock(volume, () => {
      const v = this.volume(volume);
      this.refuseTaken(volume, snap);
      const z = this.volumes.zfsOf(v);
      if (z !== undefined) return this.createZfs(z, v, snap);
      const tmp = this.staging(volume, `snap-${snap}`);
      try {
        const method = copyTree(v.mountpoint, join(tmp, '_data'), { readOnly: true });
        return this.publish(tmp, {
          name: snap,
          volume,
          id: randomHex(16),
          created: new Date().toISOString(),
          method,
          size: treeSize(join(tmp, '_data')),
          copiedUp: v.copiedUp === true,
        });
      } catch (e) {
        removeTree(tmp);
        throw e;
      }
    });
  }

  /** A ZFS snapshot of a dataset volume; its record, staged first, is renamed into place last. */
  private createZfs(z: ZfsVolumes, v: VolumeRecord, snap: string): SnapshotRecord {
    this.volumes.ensureContent(v);
    const id = randomHex(16);
    const tmp = this.staging(v.name, `snap-${snap}`);
    try {
      z.takeSnapshot(v.name, id);
      return this.publish(tmp, {
        name: snap,
        volume: v.name,
        id,
        created: new Date().toISOString(),
        method: 'zfs',
        size: z.referenced(v.name, id),
        copiedUp: v.copiedUp === true,
      });
    } catch (e) {
      removeTree(tmp);
      z.destroySnapshot(v.name, id);
      throw e;
    }
  }

  /** The store's volume datasets, for a snapshot that is a ZFS one. */
  private zfsFor(rec: SnapshotRecord): ZfsVolumes | undefined {
    if (rec.method !== 'zfs') return undefined;
    return this.volumes.zfsOf({ ...this.volumes.get(rec.volume), zfs: true });
  }

  /**
   * The snapshot's content as a directory, until `release`: its `_data`,
   * or for a ZFS snapshot a read-only clone mounted for the while (zfs-fuse
   * has no `.zfs/snapshot` directory). For use under the volume's lock.
   */
  openContent(volume: string, snap: string): { path: string; release: () => void } {
    const rec = this.get(volume, snap);
    const z = this.zfsFor(rec);
    if (z === undefined) return { path: this.dataOf(volume, snap), release: () => undefined };
    const dir = join(this.dir(volume), `${TEMP_MARK}view-${process.pid}-${randomHex(4)}`);
    return { path: dir, release: z.view(volume, rec.id, dir) };
  }

  /** Removes one snapshot: out of listings by one rename, then deleted. */
  remove(volume: string, snap: string): void {
    this.volumes.withVolumeLock(volume, () => {
      if (!this.volumes.find(volume)) throw noSuchVolume(volume);
      const rec = this.get(volume, snap);
      const z = this.zfsFor(rec);
      const doomed = join(this.dir(volume), `${TEMP_MARK}rm-${process.pid}-${randomHex(4)}`);
      renameSync(this.path(volume, snap), doomed);
      removeTree(doomed);
      // After its record: a kill in between leaves a ZFS snapshot nothing lists, which system check reports.
      z?.destroySnapshot(volume, rec.id);
    });
  }

  /**
   * Replaces the volume's content with the snapshot's: a writable copy of
   * the snapshot is made beside `_data` and exchanged with it in one step,
   * then the old content is deleted. The caller makes sure no running
   * container has the volume mounted (it would keep the old tree).
   */
  rollback(volume: string, snap: string): SnapshotRecord {
    return this.volumes.withVolumeLock(volume, () => {
      const v = this.volume(volume);
      const rec = this.get(volume, snap);
      const z = this.zfsFor(rec);
      if (z === undefined) {
        this.replaceContent(v, this.dataOf(volume, snap));
        return rec;
      }
      this.volumes.ensureContent(v);
      const ids = z.snapshotIds(volume);
      const listed = new Map(this.list(volume).map((r) => [r.id, r.name]));
      const newer = ids
        .slice(ids.indexOf(rec.id) + 1)
        .flatMap((id) => (listed.has(id) ? [listed.get(id) ?? id] : []));
      if (newer.length > 0) throw newerSnapshotsError(volume, snap, newer);
      z.rollback(volume, rec.id);
      return rec;
    });
  }

  /** Makes `from` (a snapshot's content) the volume's content; for use under the volume's lock. */
  replaceContent(v: VolumeRecord, from: string): CopyMethod {
    const fresh = join(this.volumes.dir, v.name, `${TEMP_MARK}restore-${process.pid}-${randomHex(4)}`);
    try {
      const method = copyTree(from, fresh, { readOnly: false });
      exchange(fresh, v.mountpoint);
      return method;
    } finally {
      removeTree(fresh); // the old content after the exchange; a partial copy after a failure
    }
  }

  /**
   * A new, independent volume whose content is the snapshot's: a writable
   * btrfs snapshot (instant) or a copy. Its record takes the origin's labels
   * and options; it has no snapshots of its own.
   */
  clone(volume: string, snap: string, newName: string): { volume: VolumeRecord; method: CopyMethod } {
    validateVolumeName(newName);
    return this.volumes.withVolumeLock(volume, () => {
      const v = this.volume(volume);
      const rec = this.get(volume, snap);
      if (this.volumes.find(newName) || lstatIfExists(join(this.volumes.dir, newName))) {
        throw new HutchError('VOLUME_EXISTS', `volume ${newName} already exists`, {
          hint: 'Give the clone a name no volume has (hutch volume ls).',
        });
      }
      const z = this.zfsFor(rec);
      if (z !== undefined) return { volume: this.cloneZfs(z, v, rec, newName), method: 'zfs' as const };
      const tmp = join(this.volumes.dir, `${TEMP_MARK}clone-${process.pid}-${randomHex(4)}`);
      mkdirSync(tmp, { mode: 0o700 });
      try {
        const method = copyTree(this.dataOf(volume, snap), join(tmp, '_data'), { readOnly: false });
        const record: VolumeRecord = {
          ...v,
          name: newName,
          created: new Date().toISOString(),
          mountpoint: this.volumes.mountpoint(newName),
          copiedUp: rec.copiedUp === true,
        };
        writeJsonAtomic(join(tmp, 'volume.json'), record);
        chmodSync(tmp, 0o700);
        this.volumes.withStoreLock(() => {
          if (lstatIfExists(join(this.volumes.dir, newName))) {
            throw new HutchError('VOLUME_EXISTS', `volume ${newName} already exists`);
          }
          renameSync(tmp, join(this.volumes.dir, newName));
        });
        return { volume: record, method };
      } catch (e) {
        removeTree(tmp);
        throw e;
      }
    });
  }

  /**
   * A clone of a ZFS snapshot: its record is staged, the dataset cloned
   * under the new name (unmounted), and both appear under the store's lock;
   * a kill in between leaves a dataset without record, which is garbage.
   */
  private cloneZfs(z: ZfsVolumes, v: VolumeRecord, rec: SnapshotRecord, newName: string): VolumeRecord {
    const record: VolumeRecord = {
      ...v,
      name: newName,
      created: new Date().toISOString(),
      mountpoint: this.volumes.mountpoint(newName),
      copiedUp: rec.copiedUp === true,
      zfs: true,
    };
    const tmp = join(this.volumes.dir, `${TEMP_MARK}clone-${process.pid}-${randomHex(4)}`);
    mkdirSync(join(tmp, '_data'), { recursive: true, mode: 0o700 });
    try {
      writeJsonAtomic(join(tmp, 'volume.json'), record);
      this.volumes.withStoreLock(() => {
        if (lstatIfExists(join(this.volumes.dir, newName))) {
          throw new HutchError('VOLUME_EXISTS', `volume ${newName} already exists`);
        }
        this.volumes.dropOrphanDataset(z, newName);
        z.clone(v.name, rec.id, newName);
        renameSync(tmp, join(this.volumes.dir, newName));
      });
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    z.place(newName, record.mountpoint);
    return record;
  }

  /** The snapshot's content digest, computed once and kept in its record (a snapshot never changes). */
  digest(volume: string, snap: string): string {
    const rec = this.get(volume, snap);
    if (rec.digest !== undefined) return rec.digest;
    const content = this.openContent(volume, snap);
    let digest: string;
    try {
      digest = treeDigest(content.path);
    } finally {
      content.release();
    }
    // The record sits beside a read-only subvolume, not in it: it can be rewritten.
    writeJsonAtomic(join(this.path(volume, snap), SNAPSHOT_RECORD), { ...rec, digest });
    return digest;
  }
}
