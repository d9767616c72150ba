/**
 * zfs: every layer is a dataset holding the full tree, made as a clone of
 * its parent's `@hutch` snapshot with the layer's changes applied; a
 * container's root is a clone of its image's top layer. Clones share every
 * block with their origin, so a container starts in the time of one clone
 * (~13 ms on zfs-fuse) whatever the image's size. Rootful only.
 *
 *   DATASET/layers/<id>                  a layer, snapshot <id>@hutch, mounted (when
 *                                        read) at STORE/storage/zfs/layers/<id>
 *   DATASET/layers/.tmp-<id>-<pid>-<r>   a layer being made (renamed when complete)
 *   DATASET/{layers,containers}/.tmp-gone-<id>-<pid>-<r>   being destroyed
 *   DATASET/containers/<id>              a container root, mounted at
 *                                        STORE/storage/zfs/containers/<id>/rootfs
 *
 * A layer becomes visible by `zfs rename`, which is atomic; since zfs-fuse
 * cannot rename a mounted dataset, a layer is filled, snapshotted and
 * unmounted under its temporary name, then renamed. Layers stay unmounted
 * until read (clones need no mount): every mount is one more that a mount
 * namespace made meanwhile may copy and keep busy, which stops its destroy. Every
 * dataset is `canmount=noauto`: the driver mounts what it uses when it
 * uses it (after a reboot too), and `zfs mount -a` leaves the store alone
 * (zfs-fuse still mounts a clone as it makes it).
 *
 * ZFS refuses to destroy a snapshot with clones. Layers are removed only
 * when no image needs them, but a child layer or a container may still be
 * a clone of one, and removal order is the caller's: such a layer is
 * retired (user property hutch:removed=1: no longer a layer to hutch) and
 * destroyed with the last of its dependents. Renaming it away instead is
 * what zfs-fuse cannot do: renaming an origin remounts its clones, which
 * fails while they are in use. Pulled again, a retired layer is revived.
 *
 * ZFS cannot mount again nor destroy a dataset while another mount
 * namespace holds a copy of its mount (a rootless user's hutch-pause
 * namespace made while it was mounted, say). So the driver's directory is
 * a private bind mount (mounts made under it do not propagate into
 * namespaces that exist already), layers are mounted only when read, and a
 * dataset that stays busy is retired and destroyed by a later command.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { namespaceIdLimits } from '../../sys/identity.ts';
import { HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import { TEMP_MARK } from '../../util/fs-atomic.ts';
import { applyLayer } from '../extract/index.ts';
import type { ApplyResult, CreateOptions, LayerDriver, MountOptions } from '../types.ts';
import { DriverLayout } from './layout.ts';
import {
  datasetExists,
  destroyDataset,
  listDatasets,
  mountDataset,
  numericProps,
  pinnedByStoreSnapshots,
  REMOVED_PROP,
  STORE_SNAP_PREFIX,
  unmountDataset,
  zfs,
  zfsAfterUnmount,
  zfsOrThrow,
} from './zfs-tool.ts';
import type { Dataset } from './zfs-tool.ts';
import { ZfsVolumes } from './zfs-volumes.ts';

/** The snapshot every clone of a layer is made from. */
const SNAP = 'hutch';
const IMAGE_LAYER = /^[a-f0-9]{64}$/;
const SHIFTED_LAYER = /^[a-f0-9]{64}-[a-f0-9]{16}$/;

/** Whether a dataset is mounted at `dir` (its device differs from its parent directory's). */
function isMountPoint(dir: string): boolean {
  try {
    return statSync(dir).dev !== statSync(join(dir, '..')).dev;
  } catch {
    return false;
  }
}

/** umount(8) of a path the kernel shows mounted (FUSE tells the daemon); lazily when asked. */
function unmountPath(dir: string, opts: { lazy?: boolean } = {}): void {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  spawnSync('umount', [...(opts.lazy ? ['-l'] : []), dir], { stdio: 'ignore' });
}

/** Removes a mount point's directory, never what is mounted there: a dataset that could not be unmounted keeps its files. */
function dropMountPoint(dir: string): void {
  if (!isMountPoint(dir)) rmSync(dir, { recursive: true, force: true });
}

/**
 * Makes `dir` a private bind mount of itself (once: a mount point already
 * is left alone), so the datasets mounted under it are not copied into
 * other mount namespaces, where zfs-fuse would find them busy.
 */
function keepMountsPrivate(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  if (mounts.split('\n').some((l) => l.split(' ')[4] === dir)) return;
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  for (const args of [
    ['--bind', dir, dir],
    ['--make-rprivate', dir],
  ]) {
    const r = spawnSync('mount', args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) log.debug(`mount ${args.join(' ')}: ${r.stderr.trim()}`);
  }
}

export class ZfsDriver implements LayerDriver {
  readonly name = 'zfs';
  readonly layout: DriverLayout;
  /** The parent dataset from `[storage] zfs_dataset`. */
  readonly dataset: string;
  private readonly layersDs: string;
  private readonly containersDs: string;
  /** Datasets known to exist, and whether retired: one `zfs list` per command instead of one per question. */
  private readonly known = new Map<string, boolean>();

  constructor(storeRoot: string, dataset: string) {
    this.layout = new DriverLayout(storeRoot, 'zfs');
    this.dataset = dataset;
    this.layersDs = `${dataset}/layers`;
    this.containersDs = `${dataset}/containers`;
  }

  /**
   * Makes the two parent datasets when missing, reads what exists, and
   * mounts container roots found unmounted (after a reboot, or a restart of
   * zfs-fuse): readers of a stopped container's root expect it there.
   */
  open(): void {
    for (const ds of [this.layersDs, this.containersDs]) {
      // Not mounted themselves: each child has its own mountpoint under the store.
      if (!datasetExists(ds)) zfsOrThrow(['create', '-o', 'mountpoint=none', ds], `creating ${ds}`);
    }
    keepMountsPrivate(this.layout.home);
    for (const d of this.datasets()) {
      this.known.set(d.name, d.removed);
      const container = this.childName(d.name, this.containersDs);
      const at = d.removed || container === undefined ? undefined : this.rootOf(container);
      if (at === undefined || d.mounted) continue;
      if (d.mountpoint !== at) zfsOrThrow(['set', `mountpoint=${at}`, d.name], `placing ${d.name}`);
      mountDataset(d.name);
    }
  }

  /** Where a complete layer or a container root is mounted; undefined for other datasets. */
  private mountPointOf(ds: string): string | undefined {
    const layer = this.childName(ds, this.layersDs);
    if (layer !== undefined) return layer.startsWith('.') ? undefined : this.layout.layer(layer);
    const container = this.childName(ds, this.containersDs);
    return container === undefined ? undefined : this.rootOf(container);
  }

  private datasets(): Dataset[] {
    return listDatasets(this.dataset);
  }

  /**
   * Destroys what killed pulls left half-made (their process is gone) and
   * retired layers whose last clone is gone. Called when a command opens the
   * store, so a crash costs no more than its own leftovers until then.
   */
  sweepAbandoned(): void {
    const all = this.datasets();
    // Listed only when something is retired (rare): one spawn less for every command.
    let pinned: Set<string> | undefined;
    for (const d of all) {
      const name = this.childName(d.name, this.layersDs) ?? this.childName(d.name, this.containersDs);
      if (name === undefined) continue;
      const stale = name.startsWith(TEMP_MARK) && !this.ownerAlive(name);
      let orphan = d.removed && !all.some((o) => o.origin === `${d.name}@${SNAP}`);
      if (orphan) orphan = !(pinned ??= pinnedByStoreSnapshots(this.dataset)).has(d.name);
      if (!stale && !orphan) continue;
      try {
        this.destroy(d.name, { sweeping: true });
      } catch (e) {
        log.debug(`leaving ${d.name} for system check: ${(e as Error).message}`);
      }
    }
  }

  /** Whether the process named in a staging name (`.tmp-<id>-<pid>-<r>`) still runs. */
  private ownerAlive(name: string): boolean {
    const pid = Number(name.split('-').at(-2));
    return Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`);
  }

  /** `ds`'s last component when it is a direct child of `parent`. */
  private childName(ds: string, parent: string): string | undefined {
    if (!ds.startsWith(`${parent}/`)) return undefined;
    const rest = ds.slice(parent.length + 1);
    return rest.includes('/') ? undefined : rest;
  }

  /** Whether `ds` exists and is not retired. */
  private exists(ds: string): boolean {
    const removed = this.known.get(ds);
    if (removed !== undefined) return !removed;
    // Another command may have made it since this one listed the pool.
    const r = zfs(['get', '-H', '-o', 'value', REMOVED_PROP, ds]);
    if (!r.ok) return false;
    this.known.set(ds, r.stdout.trim() === '1');
    return r.stdout.trim() !== '1';
  }

  /** Mounts `ds` at `dir` unless something is mounted there already (after a reboot, nothing is). */
  private ensureMounted(ds: string, dir: string): void {
    if (!isMountPoint(dir)) mountDataset(ds);
  }

  async createLayer(
    id: string,
    parent: string | undefined,
    diff: Readable,
    opts: CreateOptions = {},
  ): Promise<ApplyResult> {
    const stageName = basename(this.layout.stagingPath(id));
    const stage = `${this.layersDs}/${stageName}`;
    const stageDir = this.layout.layer(stageName);
    const final = `${this.layersDs}/${id}`;
    // exists() also learns whether a dataset made since this command listed the pool is retired.
    if (!this.exists(final) && this.known.get(final) === true) {
      if (datasetExists(`${final}@${SNAP}`)) return this.revive(final, diff);
      // A destroy that failed half way (its snapshot went first): finish it, then make the layer anew.
      try {
        destroyDataset(final);
      } catch (e) {
        throw new HutchError('STORAGE', `layer ${id} cannot be made again yet: ${(e as Error).message}`, {
          hint: 'Its removed dataset is still mounted in another mount namespace; try again once that ends.',
          cause: e,
        });
      }
      this.known.delete(final);
    }
    const place = ['-o', 'canmount=noauto', '-o', `mountpoint=${stageDir}`];
    try {
      if (parent === undefined) zfsOrThrow(['create', ...place, stage], `creating ${stage}`);
      else
        zfsOrThrow(
          ['clone', ...place, `${this.layersDs}/${parent}@${SNAP}`, stage],
          `cloning layer ${parent}`,
        );
      mountDataset(stage);
      if (parent === undefined) chmodSync(stageDir, 0o755); // as a layer tar's root would be
      const result = await applyLayer(diff, stageDir, {
        whiteouts: 'apply',
        userxattr: false,
        canMknod: true,
        ...namespaceIdLimits(),
      });
      if (opts.rootOwner) chownSync(stageDir, opts.rootOwner.uid, opts.rootOwner.gid);
      zfsOrThrow(['snapshot', `${stage}@${SNAP}`], `snapshotting ${stage}`);
      // zfs-fuse cannot rename a mounted dataset ("dataset is busy").
      unmountDataset(stage);
      dropMountPoint(stageDir); // the empty directory left behind
      zfsOrThrow(['set', `mountpoint=${this.layout.layer(id)}`, stage], `placing ${stage}`);
      zfsAfterUnmount(['rename', stage, final], `renaming ${stage} to ${final}`);
      // Left unmounted: layerPath mounts it when something reads it (clones need no mount).
      this.known.set(final, false);
      return result;
    } catch (e) {
      try {
        if (datasetExists(stage)) destroyDataset(stage);
      } catch (cleanup) {
        log.debug(`leaving ${stage} for the next command: ${(cleanup as Error).message}`);
      }
      dropMountPoint(stageDir);
      throw e;
    }
  }

  /**
   * The same layer pulled again while its retired dataset still exists
   * (same id, same content): it becomes a layer again. The stream is still
   * read to its end, since the caller checks its digest.
   */
  private async revive(ds: string, diff: Readable): Promise<ApplyResult> {
    let size = 0;
    for await (const chunk of diff) size += (chunk as Buffer).length;
    zfsOrThrow(['inherit', REMOVED_PROP, ds], `reviving ${ds}`);
    this.known.set(ds, false);
    return { size, warnings: [] };
  }

  hasLayer(id: string): boolean {
    return this.exists(`${this.layersDs}/${id}`);
  }

  /** Also takes the temporary name of a half-made layer (`system check --repair`). */
  removeLayer(id: string): void {
    const ds = `${this.layersDs}/${id}`;
    if (this.exists(ds)) this.destroy(ds);
    dropMountPoint(this.layout.layer(id));
  }

  /**
   * Destroys a dataset with its snapshot, or retires it while clones depend
   * on it; then destroys its origin if that was retired and this was its
   * last clone. It is retired first in any case: a destroy that fails half
   * way (the snapshot gone, the dataset busy) leaves no layer in sight,
   * only garbage the next open sweeps.
   */
  private destroy(ds: string, opts: { sweeping?: boolean } = {}): void {
    const all = this.datasets();
    const self = all.find((d) => d.name === ds);
    if (self === undefined) return;
    if (!self.removed) this.retire(self);
    if (all.some((d) => d.origin === `${ds}@${SNAP}`)) {
      log.debug(`${ds} has clones: kept (${REMOVED_PROP}=1) until the last is destroyed`);
      return;
    }
    if (pinnedByStoreSnapshots(ds).has(ds)) {
      // Out of the way of its container's directory, which goes now; a store rollback mounts it again.
      const at = this.mountPointOf(ds);
      unmountDataset(ds);
      if (at !== undefined && isMountPoint(at)) unmountPath(at);
      zfsOrThrow(['set', 'mountpoint=none', ds], `unmounting ${ds}`);
      if (at !== undefined) dropMountPoint(at);
      log.debug(`${ds} is in a store snapshot: kept (${REMOVED_PROP}=1) until that goes`);
      return;
    }
    // Renamed before it is destroyed: a rename fails while the dataset is busy, leaving it whole
    // (a destroy would take its snapshot first), and a destroy that fails after it no longer
    // holds the name the same layer, pulled again, needs. The name is garbage the sweep takes.
    const dying = `${ds.slice(0, ds.lastIndexOf('/'))}/${TEMP_MARK}gone-${basename(ds)}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      unmountDataset(ds);
      const at = this.mountPointOf(ds);
      // zfs-fuse may think a dataset unmounted that the kernel still shows mounted; a rename would then fail busy.
      if (at !== undefined && isMountPoint(at)) unmountPath(at);
      // The sweep meets what stayed busy before, unmounted long since: one try, no waiting on every command.
      if (opts.sweeping) zfsOrThrow(['rename', ds, dying], `renaming ${ds} to be destroyed`);
      else zfsAfterUnmount(['rename', ds, dying], `renaming ${ds} to be destroyed`);
    } catch (e) {
      this.postpone(ds, e, opts);
      return;
    }
    this.known.delete(ds);
    try {
      destroyDataset(dying);
    } catch (e) {
      this.postpone(dying, e, opts, this.mountPointOf(ds));
      return;
    }
    this.known.delete(ds);
    const at = this.mountPointOf(ds);
    if (at !== undefined) dropMountPoint(at);
    const origin = all.find((d) => `${d.name}@${SNAP}` === self.origin);
    if (origin === undefined || !origin.removed) return;
    if (all.some((d) => d.name !== ds && d.origin === self.origin)) return;
    this.destroy(origin.name, opts);
  }

  /** A retired dataset that stays busy: out of the store's way, for a later command to destroy. */
  private postpone(ds: string, e: unknown, opts: { sweeping?: boolean }, at = this.mountPointOf(ds)): void {
    // Its mount point may be wanted again (the same layer pulled anew).
    zfs(['set', 'mountpoint=none', ds]);
    // What zfs could not unmount here is detached lazily: it is no layer of hutch any more.
    if (at !== undefined && isMountPoint(at)) unmountPath(at, { lazy: true });
    if (at !== undefined) dropMountPoint(at);
    (opts.sweeping ? log.debug : log.warn)(
      `${ds} is removed from hutch but not destroyed yet (a later command tries again): ${(e as Error).message}`,
    );
  }

  private retire(d: Dataset): void {
    // Stays in place: unmounting or renaming an origin disturbs its clones on zfs-fuse.
    zfsOrThrow(['set', `${REMOVED_PROP}=1`, d.name], `retiring ${d.name}`);
    this.known.set(d.name, true);
  }

  /**
   * Destroys every dataset of the store, for `system reset` (whose plain
   * recursive delete would empty mounted datasets file by file and leave
   * them behind). Volumes first (./zfs-volumes.ts), then container roots:
   * they are clones of layers. The parent dataset stays: the administrator made it.
   */
  destroyAll(): void {
    try {
      new ZfsVolumes(this.dataset).destroyAll();
    } catch (e) {
      log.warn(`${(e as Error).message}: the volumes' datasets are left under ${this.dataset}`);
    }
    for (const ds of [this.containersDs, this.layersDs]) {
      if (!datasetExists(ds)) continue;
      try {
        zfsAfterUnmount(['destroy', '-r', '-f', ds], `destroying ${ds}`);
      } catch (e) {
        // What stays busy is unmounted here (the store's files go next) and left as garbage under the parent.
        for (const d of listDatasets(ds)) {
          zfs(['unmount', '-f', d.name]);
          zfs(['set', `${REMOVED_PROP}=1`, d.name]);
        }
        log.warn(`${(e as Error).message}: left retired under ${this.dataset}`);
      }
    }
    // Store snapshots' recursive snapshots start at the parent itself: those go too.
    const own = zfs(['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', this.dataset]);
    for (const snap of own.ok ? own.stdout.split('\n') : []) {
      if (snap.startsWith(`${this.dataset}@${STORE_SNAP_PREFIX}`)) zfs(['destroy', '-r', snap]);
    }
    this.known.clear();
    const { spawnSync } = process.getBuiltinModule('node:child_process');
    spawnSync('umount', [this.layout.home], { stdio: 'ignore' }); // the private bind mount of open()
  }

  /** Container ids whose root is a dataset hutch counts (not retired), for store snapshots. */
  containerRoots(): string[] {
    return this.datasets()
      .filter((d) => !d.removed)
      .map((d) => this.childName(d.name, this.containersDs))
      .filter((n): n is string => n !== undefined && !n.startsWith('.'));
  }

  /** The dataset of a layer (`layer`) or of a container's root (`root`). */
  datasetOf(kind: 'layer' | 'root', id: string): string {
    return `${kind === 'layer' ? this.layersDs : this.containersDs}/${id}`;
  }

  /**
   * Makes a retired dataset a layer or container root again (a store
   * rollback bringing back what was removed after the snapshot); a root is
   * placed and mounted where the container expects it. False when there
   * is no such dataset.
   */
  reviveRetired(kind: 'layer' | 'root', id: string): boolean {
    const ds = this.datasetOf(kind, id);
    if (!datasetExists(ds)) return false;
    zfsOrThrow(['inherit', REMOVED_PROP, ds], `reviving ${ds}`);
    this.known.set(ds, false);
    const at = this.mountPointOf(ds);
    if (kind === 'root' && at !== undefined) {
      mkdirSync(this.layout.container(id), { recursive: true, mode: 0o700 });
      zfsOrThrow(['set', `mountpoint=${at}`, ds], `placing ${ds}`);
      this.ensureMounted(ds, at);
    } else if (at !== undefined) {
      zfsOrThrow(['set', `mountpoint=${at}`, ds], `placing ${ds}`);
    }
    return true;
  }

  listLayers(kind: 'image' | 'shifted' = 'image'): string[] {
    const pattern = kind === 'image' ? IMAGE_LAYER : SHIFTED_LAYER;
    return this.datasets()
      .filter((d) => !d.removed)
      .map((d) => this.childName(d.name, this.layersDs))
      .filter((n): n is string => n !== undefined && pattern.test(n));
  }

  layerPath(id: string): string {
    const dir = this.layout.layer(id);
    this.ensureMounted(`${this.layersDs}/${id}`, dir);
    return dir;
  }

  private rootOf(containerId: string): string {
    return join(this.layout.container(containerId), 'rootfs');
  }

  mountContainer(containerId: string, top: string, opts: MountOptions = {}): string {
    const root = this.rootOf(containerId);
    const ds = `${this.containersDs}/${containerId}`;
    if (this.exists(ds)) {
      // Made by an earlier start: it holds what the container wrote.
      this.ensureMounted(ds, root);
      return root;
    }
    mkdirSync(this.layout.container(containerId), { recursive: true, mode: 0o700 });
    // A clone is made whole or not at all, so it needs no temporary name.
    zfsOrThrow(
      ['clone', '-o', 'canmount=noauto', '-o', `mountpoint=${root}`, `${this.layersDs}/${top}@${SNAP}`, ds],
      `cloning layer ${top} for container ${containerId}`,
    );
    this.known.set(ds, false);
    mountDataset(ds);
    if (opts.rootOwner) chownSync(root, opts.rootOwner.uid, opts.rootOwner.gid);
    return root;
  }

  unmountContainer(): void {
    // A root stays mounted while its container exists, as a btrfs snapshot stays
    // in place: diff, export and commit read it there, stopped or not.
  }

  removeContainer(containerId: string): void {
    const ds = `${this.containersDs}/${containerId}`;
    if (this.exists(ds)) this.destroy(ds);
    // A retired root still mounted (a removal killed half way) holds the directory: unmounted first.
    if (isMountPoint(this.rootOf(containerId))) {
      unmountDataset(ds);
      unmountPath(this.rootOf(containerId));
    }
    dropMountPoint(this.rootOf(containerId));
    rmSync(this.layout.container(containerId), { recursive: true, force: true });
  }

  viewImage(top: string): { path: string; release: () => void } {
    // A layer is the whole tree already.
    return { path: this.layerPath(top), release: () => undefined };
  }

  /** The layer's own bytes: ZFS's `used`, which for a clone excludes what it shares with its origin. */
  usage(id: string): number {
    const used = numericProps(`${this.layersDs}/${id}`, ['used']).used ?? Number.NaN;
    return Number.isFinite(used) ? used : 0;
  }

  /** ZFS's compression ratio over the parent dataset (1 when uncompressed), for `system df`. */
  compressRatio(): number {
    const r = numericProps(this.dataset, ['compressratio']).compressratio ?? Number.NaN;
    return Number.isFinite(r) && r > 0 ? r : 1;
  }
}
