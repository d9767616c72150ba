/**
 * Named volumes of a zfs store as datasets, so that their snapshots,
 * rollbacks, clones and replication are ZFS's own (no data copied):
 *
 *   DATASET/volumes/<name>                a volume's content, mounted at
 *                                         ROOT/volumes/<name>/_data
 *   DATASET/volumes/<name>@<id>           a snapshot (the id of its hutch record, which
 *                                         send and receive keep: names may differ, ids not)
 *   DATASET/volumes/.tmp-<what>-<pid>-<r> a dataset being made, viewed or destroyed
 *   DATASET/volumes/.kept-<name>-<r>      a removed volume a store snapshot still holds
 *                                         (user property hutch:volume names it)
 *
 * Records stay files beside the content (../../runtime/volumes.ts); these
 * are the dataset operations only. A volume's dataset is made unmounted
 * (mountpoint=none) so that it can be renamed (zfs-fuse cannot rename a
 * mounted dataset), and is mounted once its record is in place; one found
 * unmounted (after a reboot, or a command killed between the two steps)
 * is mounted at its next use (VolumeStore.ensureContent) or by `system
 * check --repair`.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { TEMP_MARK, lstatIfExists } from '../../util/fs-atomic.ts';
import { HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import {
  STORE_SNAP_PREFIX,
  datasetExists,
  mountDataset,
  pinnedByStoreSnapshots,
  unmountDataset,
  zfs,
  zfsAfterUnmount,
  zfsOrThrow,
} from './zfs-tool.ts';

export interface VolumeDataset {
  /** The last component: a volume name, or a `.tmp-*` name. */
  name: string;
  mountpoint: string;
  mounted: boolean;
  /** The snapshot it was cloned from (`DATASET/volumes/X@id`), or undefined. */
  origin: string | undefined;
}

const COPYING_PROP = 'hutch:copyup';
const VOLUME_PROP = 'hutch:volume';
const RECEIVING_PROP = 'hutch:receiving';

/** zfs-fuse may keep a dataset busy for a while after its unmount when loaded: up to 3 s. */
const BUSY_TRIES = { tries: 60 };

function tempName(what: string): string {
  return `${TEMP_MARK}${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

export class ZfsVolumes {
  /** `DATASET/volumes`, the parent of every volume's dataset. */
  readonly parent: string;

  constructor(storeDataset: string) {
    this.parent = `${storeDataset}/volumes`;
  }

  dataset(name: string): string {
    return `${this.parent}/${name}`;
  }

  snapshot(name: string, id: string): string {
    return `${this.dataset(name)}@${id}`;
  }

  /** Makes the parent when missing; not mounted itself (each volume has its own mountpoint). */
  ensureParent(): void {
    if (!datasetExists(this.parent))
      zfsOrThrow(['create', '-o', 'mountpoint=none', this.parent], `creating ${this.parent}`);
  }

  /** The datasets directly under the parent, in one spawn; none when the parent does not exist yet. */
  list(): VolumeDataset[] {
    const r = zfs([
      'list',
      '-H',
      '-t',
      'filesystem',
      '-o',
      'name,mountpoint,mounted,origin',
      '-r',
      this.parent,
    ]);
    if (!r.ok) return [];
    const out: VolumeDataset[] = [];
    for (const line of r.stdout.split('\n')) {
      const [full = '', mountpoint = '-', mounted = 'no', origin = '-'] = line.split('\t');
      if (!full.startsWith(`${this.parent}/`)) continue;
      const name = full.slice(this.parent.length + 1);
      if (name.includes('/')) continue;
      out.push({ name, mountpoint, mounted: mounted === 'yes', origin: origin === '-' ? undefined : origin });
    }
    return out;
  }

  exists(name: string): boolean {
    return datasetExists(this.dataset(name));
  }

  /** A new empty dataset, unmounted so that it can still be renamed. */
  create(name: string): void {
    this.ensureParent();
    zfsOrThrow(
      ['create', '-o', 'canmount=noauto', '-o', 'mountpoint=none', this.dataset(name)],
      `creating the dataset of volume ${name}`,
    );
  }

  /** A new dataset whose content is a snapshot's, unmounted; it shares every block with it. */
  clone(from: string, id: string, name: string): void {
    this.ensureParent();
    zfsOrThrow(
      [
        'clone',
        '-o',
        'canmount=noauto',
        '-o',
        'mountpoint=none',
        this.snapshot(from, id),
        this.dataset(name),
      ],
      `cloning ${from}@${id}`,
    );
  }

  /** Renames an unmounted dataset (a volume appearing: `.tmp-*` to its name). */
  rename(from: string, to: string): void {
    zfsAfterUnmount(
      ['rename', this.dataset(from), this.dataset(to)],
      `renaming the dataset ${from} to ${to}`,
    );
  }

  /** A received dataset: mounted only by hutch (`zfs mount -a` leaves it), as the ones hutch makes. */
  keepUnmounted(name: string): void {
    zfsOrThrow(['set', 'canmount=noauto', this.dataset(name)], `settling the dataset of volume ${name}`);
  }

  /** Gives a dataset its mount point and mounts it there. */
  place(name: string, at: string): void {
    mkdirSync(at, { recursive: true, mode: 0o755 });
    zfsOrThrow(['set', `mountpoint=${at}`, this.dataset(name)], `placing the dataset of volume ${name}`);
    mountDataset(this.dataset(name));
  }

  /** Takes the dataset out of its mount point (so the record's directory can be renamed and deleted). */
  unplace(name: string): void {
    this.unmountFully(name);
    zfsOrThrow(['set', 'mountpoint=none', this.dataset(name)], `unmounting the dataset of volume ${name}`);
  }

  takeSnapshot(name: string, id: string): void {
    zfsOrThrow(['snapshot', this.snapshot(name, id)], `snapshotting volume ${name}`);
  }

  /**
   * The volume's snapshot ids, oldest first (records are hutch's; these are
   * what ZFS holds). Those marked for deferred destruction (removed while
   * clones stand on them) only with `deferred`.
   */
  snapshotIds(name: string, opts: { deferred?: boolean; store?: boolean } = {}): string[] {
    const r = zfs([
      'list',
      '-H',
      '-t',
      'snapshot',
      '-o',
      'name,defer_destroy',
      '-s',
      'creation',
      '-r',
      this.dataset(name),
    ]);
    if (!r.ok) return [];
    const prefix = `${this.dataset(name)}@`;
    return r.stdout
      .split('\n')
      .map((l) => l.split('\t'))
      .filter(([n = '', deferred]) => n.startsWith(prefix) && (opts.deferred === true || deferred !== 'on'))
      .map(([n = '']) => n.slice(prefix.length))
      .filter((id) => opts.store === true || !id.startsWith(STORE_SNAP_PREFIX));
  }

  /**
   * Marks (or unmarks) a volume's dataset as being filled by a copy-up: the
   * copy goes straight into the dataset (its mount point cannot be
   * exchanged as a directory can), so a copy-up killed half way is known by
   * the mark and started over. A user property, as the layers' hutch:removed.
   */
  markCopying(name: string, on: boolean): void {
    if (on) zfsOrThrow(['set', `${COPYING_PROP}=1`, this.dataset(name)], `marking volume ${name}`);
    else zfsOrThrow(['inherit', COPYING_PROP, this.dataset(name)], `unmarking volume ${name}`);
  }

  /**
   * Marks a volume's dataset as being written by a receive that started
   * from snapshot `baseId` (undefined: unmarks it). A receive of hutch's
   * portable stream writes into the volume itself, so one killed half way
   * is known by the mark and rolled back to its base (see interrupted()).
   */
  markReceiving(name: string, baseId: string | undefined): void {
    if (baseId !== undefined)
      zfsOrThrow(['set', `${RECEIVING_PROP}=${baseId}`, this.dataset(name)], `marking volume ${name}`);
    else zfsOrThrow(['inherit', RECEIVING_PROP, this.dataset(name)], `unmarking volume ${name}`);
  }

  /** Rolls back what a killed receive half wrote (its mark says from which snapshot); answers whether there was one. */
  finishInterrupted(name: string): boolean {
    const base = zfs(['get', '-H', '-o', 'value', RECEIVING_PROP, this.dataset(name)]).stdout.trim();
    if (base === '' || base === '-') return false;
    if (datasetExists(this.snapshot(name, base))) this.rollback(name, base);
    this.markReceiving(name, undefined);
    return true;
  }

  copying(name: string): boolean {
    return zfs(['get', '-H', '-o', 'value', COPYING_PROP, this.dataset(name)]).stdout.trim() === '1';
  }

  /** Bytes a snapshot refers to (its content's size on disk). */
  referenced(name: string, id: string): number {
    const r = zfs(['get', '-Hp', '-o', 'value', 'referenced', this.snapshot(name, id)]);
    const n = Number.parseInt(r.stdout.trim(), 10);
    return r.ok && Number.isFinite(n) ? n : 0;
  }

  /**
   * Destroys a snapshot; one that clones (other volumes) still depend on is
   * marked for deferred destruction (`destroy -d`): ZFS destroys it with
   * its last clone. A snapshot already gone is fine.
   */
  destroySnapshot(name: string, id: string): void {
    const snap = this.snapshot(name, id);
    if (!datasetExists(snap)) return;
    const r = zfs(['destroy', snap]);
    if (r.ok) return;
    if (!/dependent clones/.test(r.error)) zfsOrThrow(['destroy', snap], `destroying ${snap}`);
    zfsOrThrow(['destroy', '-d', snap], `marking ${snap} to be destroyed with its last clone`);
  }

  /**
   * Makes the dataset's content the snapshot's, in one ZFS transaction.
   * ZFS rolls back only to the newest snapshot; newer ones that hutch does
   * not list (leftovers) are destroyed with `-r`, and the caller refuses
   * when hutch lists newer ones.
   */
  rollback(name: string, id: string): void {
    const ids = this.snapshotIds(name, { deferred: true, store: true });
    const newer = ids.slice(ids.indexOf(id) + 1);
    if (newer.some((n) => n.startsWith(STORE_SNAP_PREFIX))) {
      throw new HutchError(
        'SNAPSHOT_NOT_NEWEST',
        `volume ${name} is on ZFS, which rolls back only to the newest snapshot, and a store snapshot taken since holds it`,
        {
          hint: 'Remove the newer store snapshots (hutch system snapshots, hutch system snapshot rm NAME), or clone the snapshot into a new volume instead.',
        },
      );
    }
    zfsOrThrow(
      ['rollback', ...(newer.length > 0 ? ['-r'] : []), this.snapshot(name, id)],
      `rolling back volume ${name}`,
    );
  }

  /**
   * A snapshot's content at `dir` for reading (a digest, a portable send):
   * zfs-fuse has no `.zfs/snapshot` directory, so a temporary clone is
   * mounted there. `release` unmounts and destroys it; a killed command's
   * clone is a `.tmp-*` dataset that the volume sweep destroys.
   */
  view(name: string, id: string, dir: string): () => void {
    const tmp = tempName('view');
    this.ensureParent();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    zfsOrThrow(
      [
        'clone',
        '-o',
        'canmount=noauto',
        '-o',
        `mountpoint=${dir}`,
        '-o',
        'readonly=on',
        this.snapshot(name, id),
        this.dataset(tmp),
      ],
      `opening snapshot ${name}@${id}`,
    );
    mountDataset(this.dataset(tmp));
    return () => {
      this.destroy(tmp);
      rmSync(dir, { recursive: true, force: true });
    };
  }

  /**
   * Destroys a volume's dataset with its snapshots. Clones made from them
   * (other volumes) are promoted first, which moves the snapshots they
   * stand on to them (ZFS's way of letting an origin go); those moved
   * snapshots belong to no record of theirs and are destroyed after (or
   * deferred while further clones stand on them). Renamed `.tmp-gone-*`
   * before the destroy, so a destroy that fails half way holds no volume's
   * name and the sweep finishes it.
   */
  destroy(name: string): void {
    const ds = this.dataset(name);
    if (!datasetExists(ds)) return;
    this.unmountFully(name);
    if (
      !name.startsWith('.') &&
      this.snapshotIds(name, { store: true }).some((id) => id.startsWith(STORE_SNAP_PREFIX))
    ) {
      this.keep(name);
      return;
    }
    const moved: string[] = [];
    for (let guard = 0; guard < 1000; guard++) {
      const dependent = this.list().find((d) => d.origin?.startsWith(`${ds}@`));
      if (dependent === undefined) break;
      if (dependent.name.startsWith(TEMP_MARK)) {
        // A killed command's view or staging clone: nothing to keep.
        this.destroy(dependent.name);
        continue;
      }
      const before = this.snapshotIds(name, { deferred: true });
      zfsOrThrow(
        ['promote', this.dataset(dependent.name)],
        `promoting ${dependent.name}, a clone of ${name}`,
      );
      const stayed = new Set(this.snapshotIds(name, { deferred: true }));
      for (const id of before) if (!stayed.has(id)) moved.push(`${this.dataset(dependent.name)}@${id}`);
    }
    let doomed = name;
    if (!name.startsWith(TEMP_MARK)) {
      doomed = tempName('gone');
      zfsAfterUnmount(['rename', ds, this.dataset(doomed)], `renaming ${ds} to be destroyed`, BUSY_TRIES);
    }
    zfsAfterUnmount(
      ['destroy', '-r', this.dataset(doomed)],
      `destroying the dataset of volume ${name}`,
      BUSY_TRIES,
    );
    for (const snap of moved) {
      const r = zfs(['destroy', '-d', snap]);
      if (!r.ok) log.debug(`left ${snap}: ${r.error}`);
    }
  }

  /**
   * Mounts a mounted dataset afresh after `zfs receive` changed its content
   * from below: zfs-fuse as Debian configures it lets the kernel keep
   * files' attributes for an hour (`fuse-attr-timeout = 3600`), and the old
   * mount would go on showing old sizes and times. (`zfs rollback` of a
   * mounted dataset needs none: zfs-fuse remounts it itself; unmounted
   * around it, it now and then fails with an I/O error, and a remount after
   * it now and then finds the dataset busy.)
   */
  refresh(name: string): void {
    if (this.list().find((d) => d.name === name)?.mounted !== true) return;
    this.unmountFully(name);
    mountDataset(this.dataset(name));
  }

  /**
   * Unmounts a dataset, and its mount point in the kernel's table too:
   * zfs-fuse may call a dataset unmounted that the kernel still shows
   * mounted (as the layers' removal meets, ./zfs.ts), and a rename or
   * destroy would then fail "busy".
   */
  private unmountFully(name: string): void {
    const at = this.list().find((d) => d.name === name)?.mountpoint;
    unmountDataset(this.dataset(name));
    if (at === undefined || !at.startsWith('/')) return;
    const here = lstatIfExists(at);
    const parent = lstatIfExists(dirname(at));
    if (here && parent && here.dev !== parent.dev) {
      const { spawnSync } = process.getBuiltinModule('node:child_process');
      spawnSync('umount', [at], { stdio: 'ignore' });
    }
  }

  /**
   * A removed volume that a store snapshot holds stays, out of its name's
   * way (a new volume may take the name), until that store snapshot goes
   * (sweepKept); a store rollback brings it back (forStore).
   */
  private keep(name: string): void {
    const kept = `.kept-${name}-${Math.random().toString(36).slice(2, 8)}`;
    zfsOrThrow(['set', 'mountpoint=none', this.dataset(name)], `unmounting ${name}`);
    zfsOrThrow(['set', `${VOLUME_PROP}=${name}`, this.dataset(name)], `keeping ${name}`);
    zfsAfterUnmount(['rename', this.dataset(name), this.dataset(kept)], `keeping ${name}`, BUSY_TRIES);
  }

  /** Destroys kept volumes that no store snapshot holds any more. */
  sweepKept(): void {
    const pinned = pinnedByStoreSnapshots(this.parent);
    for (const d of this.list()) {
      if (d.name.startsWith('.kept-') && !pinned.has(this.dataset(d.name))) this.destroy(d.name);
    }
  }

  /**
   * The dataset (its name under the parent) holding volume `volume` as
   * store snapshot `tag` has it: the live one, or a kept one. Undefined
   * when neither has that snapshot.
   */
  forStore(volume: string, tag: string): string | undefined {
    if (datasetExists(this.snapshot(volume, tag))) return volume;
    for (const d of this.list()) {
      if (!d.name.startsWith('.kept-') || !datasetExists(this.snapshot(d.name, tag))) continue;
      const owner = zfs(['get', '-H', '-o', 'value', VOLUME_PROP, this.dataset(d.name)]).stdout.trim();
      if (owner === volume) return d.name;
    }
    return undefined;
  }

  /** Destroys every volume dataset (system reset); clones among them go with their origins (-R). */
  destroyAll(): void {
    if (!datasetExists(this.parent)) return;
    for (const d of this.list()) if (d.mounted) this.unmountFully(d.name);
    zfsAfterUnmount(['destroy', '-R', '-f', this.parent], `destroying ${this.parent}`, BUSY_TRIES);
  }
}

/** The refusal of a rollback past newer snapshots, which ZFS would have to destroy. */
export function newerSnapshotsError(volume: string, snap: string, newer: string[]): HutchError {
  return new HutchError(
    'SNAPSHOT_NOT_NEWEST',
    `volume ${volume} is on ZFS, which rolls back only to the newest snapshot, and ${snap} has newer ones: ${newer.join(', ')}`,
    {
      hint: `Remove them first (hutch volume snapshot rm ${volume} ${newer.join(' ')}), or clone ${volume}@${snap} into a new volume instead.`,
    },
  );
}
