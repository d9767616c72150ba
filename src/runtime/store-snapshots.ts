/**
 * Store snapshots on the btrfs driver: the whole store as it was at one
 * moment, kept beside it, and the way back to it.
 *
 *   ROOT/snapshots/NAME/snapshot.json     the record (written last: a snapshot without it is a leftover)
 *   ROOT/snapshots/NAME/images/           image and layer records, and the blobs (reflink copies)
 *   ROOT/snapshots/NAME/containers/       container records, names, specs, logs (reflink copies)
 *   ROOT/snapshots/NAME/networks/         user network definitions
 *   ROOT/snapshots/NAME/layers/<id>       a read-only snapshot of every layer subvolume
 *   ROOT/snapshots/NAME/roots/<id>        a read-only snapshot of every container root
 *   ROOT/snapshots/NAME/volumes/<name>/   volume.json and _data, a read-only snapshot
 *   ROOT/snapshots/.rollback.json         a rollback under way: rerunning it finishes the job
 *   ROOT/snapshots/.tmp-rollback/         its work: new trees before the swap, old ones after
 *   ROOT/snapshots/.lock                  serialises snapshots, rollbacks and removals
 *
 * Layers and container roots are subvolumes of their own, and a btrfs
 * snapshot stops at a nested subvolume, so one snapshot of the store's
 * directory would hold empty directories where they were: each gets a
 * snapshot of its own. Layers are immutable, so theirs cost nothing until
 * an image is removed; keeping them inside the store snapshot (rather than
 * pinning the live layers) leaves rmi and `system check` unaware of
 * snapshots. Metadata is small and copied (reflinks where the filesystem
 * has them).
 */
import {
  copyFileSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { BtrfsDriver } from '../storage/drivers/btrfs.ts';
import type { ZfsDriver } from '../storage/drivers/zfs.ts';
import { isSubvolume, snapshotReadOnly, snapshotSubvolume } from '../storage/drivers/btrfs-tool.ts';
import { HutchError } from '../util/errors.ts';
import { TEMP_MARK, readIfExists, writeJsonAtomic } from '../util/fs-atomic.ts';
import { randomHex } from '../util/random.ts';
import { copyTree, exchange, removeTree } from './volume-tree.ts';
import { VOLUME_NAME } from './volumes.ts';

export const STORE_SNAPSHOTS_DIR = 'snapshots';
export const STORE_SNAPSHOT_RECORD = 'snapshot.json';
export const ROLLBACK_JOURNAL = '.rollback.json';
/** In a rollback's work directory: volumes' own snapshots on their way to the restored tree. */
export const OWN_SNAPSHOTS = 'own-snapshots';

export interface StoreSnapshotRecord {
  name: string;
  /** ISO 8601. */
  created: string;
  driver: string;
  /** Layer subvolumes kept: image layers and shifted copies. */
  layers: string[];
  /** Containers whose root is kept (a container never started has none). */
  roots: string[];
  volumes: string[];
  images: number;
  containers: number;
}

/**
 * Copies a directory's content, metadata and all, reflinked where the
 * filesystem can; `link` hard-links files instead, for trees whose files
 * are only ever replaced by rename, never written in place (images/).
 */
export function copyDir(src: string, dst: string, opts: { link?: boolean } = {}): void {
  mkdirSync(dst, { recursive: true, mode: 0o700 });
  if (!existsSync(src)) return;
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const how = opts.link ? '--link' : '--reflink=auto';
  const r = spawnSync('cp', ['-a', how, '--', `${src}/.`, `${dst}/`], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (r.status !== 0) {
    throw new HutchError('STORE_SNAPSHOT', `copying ${src} failed: ${(r.stderr || String(r.error)).trim()}`, {
      hint: 'Check free space on the store.',
    });
  }
}

export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Whether the command that made a staged name (`.tmp-WHAT-PID-R`, its pid
 * second to last) is alive: a live maker's temporary files are no leftovers.
 */
export function stagedByLiveProcess(name: string): boolean {
  const pid = Number(name.split('-').at(-2));
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && existsSync(`/proc/${pid}`);
}

export function validateStoreSnapshotName(name: string): void {
  if (!VOLUME_NAME.test(name) || name.length > 128) {
    throw new HutchError('BAD_SNAPSHOT_NAME', `"${name}" is not a valid snapshot name`, {
      hint: 'Use letters, digits, "_", "." and "-", starting with a letter or digit.',
    });
  }
}

export class StoreSnapshots {
  readonly root: string;
  readonly dir: string;
  protected readonly driver: BtrfsDriver | ZfsDriver;

  constructor(root: string, driver: BtrfsDriver | ZfsDriver) {
    this.root = root;
    this.dir = join(root, STORE_SNAPSHOTS_DIR);
    this.driver = driver;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  get lockPath(): string {
    return join(this.dir, '.lock');
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  protected staging(what: string): string {
    return join(this.dir, `${TEMP_MARK}${what}-${process.pid}-${randomHex(4)}`);
  }

  get(name: string): StoreSnapshotRecord | undefined {
    if (!VOLUME_NAME.test(name)) return undefined;
    const text = readIfExists(join(this.path(name), STORE_SNAPSHOT_RECORD));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as StoreSnapshotRecord;
    } catch {
      return undefined;
    }
  }

  list(): StoreSnapshotRecord[] {
    return listDir(this.dir)
      .filter((n) => !n.startsWith('.'))
      .map((n) => this.get(n))
      .filter((r): r is StoreSnapshotRecord => r !== undefined)
      .sort((a, b) => a.created.localeCompare(b.created));
  }

  /**
   * Removes what killed snapshot commands left (half-made snapshots, a
   * journal's temporary file); a rollback's work directory stays while
   * its journal says it is unfinished. The caller holds the snapshots' lock.
   */
  sweepAbandoned(): void {
    for (const n of listDir(this.dir)) {
      if (!n.startsWith(TEMP_MARK) || stagedByLiveProcess(n)) continue;
      if (n === `${TEMP_MARK}rollback` && this.pendingRollback() !== undefined) continue;
      removeTree(join(this.dir, n));
    }
  }

  /** The rollback a killed command left unfinished, if any. */
  pendingRollback(): string | undefined {
    const text = readIfExists(join(this.dir, ROLLBACK_JOURNAL));
    if (text === undefined) return undefined;
    try {
      return (JSON.parse(text) as { name?: string }).name;
    } catch {
      return undefined;
    }
  }

  /**
   * Takes the snapshot. The caller holds the store's locks, so no record
   * changes meanwhile; running containers' roots and volumes are taken as
   * a crash would leave them.
   */
  take(name: string): StoreSnapshotRecord {
    const stage = this.staging(name);
    mkdirSync(stage, { mode: 0o700 });
    try {
      copyDir(join(this.root, 'images'), join(stage, 'images'));
      copyDir(join(this.root, 'containers'), join(stage, 'containers'));
      copyDir(join(this.root, 'networks'), join(stage, 'networks'));
      const layers = [...this.driver.listLayers('image'), ...this.driver.listLayers('shifted')];
      mkdirSync(join(stage, 'layers'));
      for (const id of layers) snapshotReadOnly(this.driver.layerPath(id), join(stage, 'layers', id));
      mkdirSync(join(stage, 'roots'));
      const roots = listDir(this.driver.layout.containers).filter((id) =>
        isSubvolume(join(this.driver.layout.container(id), 'rootfs')),
      );
      for (const id of roots) {
        snapshotReadOnly(join(this.driver.layout.container(id), 'rootfs'), join(stage, 'roots', id));
      }
      const volumes = this.takeVolumes(join(stage, 'volumes'));
      const images = (
        JSON.parse(readIfExists(join(this.root, 'images', 'images.json')) ?? '{}') as {
          images?: unknown[];
        }
      ).images;
      const record: StoreSnapshotRecord = {
        name,
        created: new Date().toISOString(),
        driver: this.driver.name,
        layers,
        roots,
        volumes,
        images: Array.isArray(images) ? images.length : 0,
        containers: listDir(join(this.root, 'containers')).filter((n) => /^[a-f0-9]{64}$/.test(n)).length,
      };
      writeJsonAtomic(join(stage, STORE_SNAPSHOT_RECORD), record);
      renameSync(stage, this.path(name));
      return record;
    } catch (e) {
      removeTree(stage);
      throw e;
    }
  }

  /** Each volume's record and a read-only copy of its content; its own snapshots stay its own. */
  private takeVolumes(dst: string): string[] {
    mkdirSync(dst);
    const src = join(this.root, 'volumes');
    const names = listDir(src).filter((n) => VOLUME_NAME.test(n) && existsSync(join(src, n, 'volume.json')));
    for (const n of names) {
      mkdirSync(join(dst, n));
      copyFileSync(join(src, n, 'volume.json'), join(dst, n, 'volume.json'));
      copyTree(join(src, n, '_data'), join(dst, n, '_data'), { readOnly: true });
    }
    return names;
  }

  remove(name: string): void {
    // Renamed away first, so a killed removal leaves a leftover, never half a snapshot under its name.
    const aside = this.staging(`rm-${name}`);
    renameSync(this.path(name), aside);
    removeTree(aside);
  }

  /**
   * Makes the store what the snapshot holds. Every step can be done again,
   * and the journal says one is due, so a killed rollback is finished by
   * the next (`system check` says so). The caller holds the store's locks
   * and has made sure no container runs.
   */
  rollback(snap: StoreSnapshotRecord): void {
    const from = this.path(snap.name);
    writeJsonAtomic(join(this.dir, ROLLBACK_JOURNAL), { name: snap.name, started: new Date().toISOString() });
    // One fixed place, so a rollback run again after a kill finds what the first left there.
    const work = this.rollbackWork;
    mkdirSync(work, { recursive: true, mode: 0o700 });
    this.rescueOwnSnapshots(work, snap.volumes);
    this.restoreLayers(from, snap);
    this.restoreImages(from);
    this.swapIn(work, 'containers', join(this.root, 'containers'), (d) =>
      copyDir(join(from, 'containers'), d),
    );
    this.swapIn(work, 'roots', this.driver.layout.containers, (d) => {
      mkdirSync(d, { mode: 0o700 });
      for (const id of snap.roots) {
        mkdirSync(join(d, id), { mode: 0o700 });
        snapshotSubvolume(join(from, 'roots', id), join(d, id, 'rootfs'));
      }
    });
    this.swapIn(work, 'volumes', join(this.root, 'volumes'), (d) =>
      this.restoreVolumes(from, snap, d, join(work, OWN_SNAPSHOTS)),
    );
    this.swapIn(work, 'networks', join(this.root, 'networks'), (d) => {
      copyDir(join(from, 'networks'), d);
      // Leases belong to running containers, and none runs after a rollback.
      for (const n of listDir(d)) if (n.endsWith('.leases.json')) rmSync(join(d, n), { force: true });
    });
    const keep = new Set(snap.layers);
    for (const id of [...this.driver.listLayers('image'), ...this.driver.listLayers('shifted')]) {
      if (!keep.has(id)) this.driver.removeLayer(id);
    }
    rmSync(join(this.dir, ROLLBACK_JOURNAL), { force: true });
    removeTree(work);
  }

  /** Layers the snapshot has and the store lost come back as writable snapshots, made beside and renamed. */
  private restoreLayers(from: string, snap: StoreSnapshotRecord): void {
    for (const id of snap.layers) {
      if (this.driver.hasLayer(id)) continue;
      const stage = this.driver.layout.stagingPath(id);
      snapshotSubvolume(join(from, 'layers', id), stage);
      renameSync(stage, this.driver.layerPath(id));
    }
  }

  /**
   * Blobs are content-addressed: the missing ones are copied back, then
   * the records replace the current ones, then blobs the snapshot did not
   * have go. Each file appears by rename, whole.
   */
  protected restoreImages(from: string): void {
    const blobs = join(this.root, 'images', 'blobs', 'sha256');
    const saved = join(from, 'images', 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true, mode: 0o700 });
    const wanted = new Set(listDir(saved).filter((n) => !n.startsWith(TEMP_MARK)));
    for (const hex of wanted) {
      if (existsSync(join(blobs, hex))) continue;
      const tmp = join(blobs, `${TEMP_MARK}${hex}-${process.pid}`);
      copyFileSync(join(saved, hex), tmp, constants.COPYFILE_FICLONE);
      renameSync(tmp, join(blobs, hex));
    }
    for (const file of ['layers.json', 'images.json']) {
      const src = join(from, 'images', file);
      const dst = join(this.root, 'images', file);
      if (!existsSync(src)) {
        rmSync(dst, { force: true });
        continue;
      }
      const tmp = `${dst}.${TEMP_MARK}${process.pid}`;
      copyFileSync(src, tmp);
      renameSync(tmp, dst);
    }
    for (const hex of listDir(blobs))
      if (!wanted.has(hex) && !hex.startsWith(TEMP_MARK)) rmSync(join(blobs, hex));
  }

  /** Where a rollback builds the new trees and leaves the old ones until it ends. */
  get rollbackWork(): string {
    return join(this.dir, `${TEMP_MARK}rollback`);
  }

  /**
   * Volumes' own snapshots move from the live tree into the one being
   * built; a killed rollback may have left them in its work directory
   * (in a half-built tree, or in the old tree after the swap). Put them
   * aside before that directory is rebuilt, so the next run carries them over.
   */
  protected rescueOwnSnapshots(work: string, volumes: string[]): void {
    const hold = join(work, OWN_SNAPSHOTS);
    for (const n of volumes) {
      const left = join(work, 'volumes', n, 'snapshots');
      if (!existsSync(left) || existsSync(join(hold, n))) continue;
      mkdirSync(hold, { recursive: true, mode: 0o700 });
      renameSync(left, join(hold, n));
    }
  }

  private restoreVolumes(from: string, snap: StoreSnapshotRecord, dst: string, hold: string): void {
    mkdirSync(dst, { mode: 0o700 });
    mkdirSync(join(dst, '.locks'), { mode: 0o700 });
    const current = join(this.root, 'volumes');
    for (const n of snap.volumes) {
      mkdirSync(join(dst, n), { mode: 0o700 });
      copyFileSync(join(from, 'volumes', n, 'volume.json'), join(dst, n, 'volume.json'));
      copyTree(join(from, 'volumes', n, '_data'), join(dst, n, '_data'), { readOnly: false });
      // A volume's own snapshots are its history, not the store's: a volume that stays keeps them.
      const own = [join(current, n, 'snapshots'), join(hold, n)].find((p) => existsSync(p));
      if (own !== undefined) renameSync(own, join(dst, n, 'snapshots'));
    }
    writeFileSync(join(dst, 'volumes.lock'), '', { mode: 0o600 });
  }

  /**
   * Builds the new tree in the work directory, then swaps it with `live`
   * in one step (renameat2 RENAME_EXCHANGE): a reader sees the old tree or
   * the new one. The old one stays in the work directory until the end.
   */
  protected swapIn(work: string, what: string, live: string, build: (dir: string) => void): void {
    const fresh = join(work, what);
    if (existsSync(fresh)) removeTree(fresh);
    build(fresh);
    if (existsSync(live)) exchange(fresh, live);
    else renameSync(fresh, live);
  }
}
