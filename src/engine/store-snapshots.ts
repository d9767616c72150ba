/**
 * `hutch system snapshot|snapshots|rollback`: the whole store at one
 * moment, and the way back to it (the disk side is
 * ../runtime/store-snapshots.ts, and ../runtime/store-snapshots-zfs.ts).
 * Only the btrfs and zfs drivers have them: their layers, container roots
 * and volumes are subvolumes or datasets, so a snapshot is a handful of
 * transactions whatever the store's size. Elsewhere a
 * copy of every layer would cost the store's whole size, so hutch refuses
 * and points at volume snapshots, which work everywhere.
 *
 * Rollback and running containers: a running container's root and
 * volumes would be swapped under it, so rollback refuses while any runs;
 * with -f it stops them first. They are not started again: the restored
 * store may not have them, or have them in another state.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BtrfsDriver } from '../storage/drivers/btrfs.ts';
import { ZfsDriver } from '../storage/drivers/zfs.ts';
import { ZfsStoreSnapshots } from '../runtime/store-snapshots-zfs.ts';
import { StoreSnapshots, validateStoreSnapshotName } from '../runtime/store-snapshots.ts';
import type { StoreSnapshotRecord } from '../runtime/store-snapshots.ts';
import { lockFile } from '../sys/lock.ts';
import type { Lock } from '../sys/lock.ts';
import { HutchError } from '../util/errors.ts';
import { openContainers } from './containers/open.ts';
import { isRunning, stopContainer } from './containers/stop.ts';
import type { Context } from './context.ts';
import { openImageStore } from './images-store.ts';
import { VolumeStore } from '../runtime/volumes.ts';

export function openStoreSnapshots(ctx: Context): StoreSnapshots {
  const { driver } = openImageStore(ctx);
  if (driver instanceof ZfsDriver) return new ZfsStoreSnapshots(ctx.paths.root, driver);
  if (!(driver instanceof BtrfsDriver)) {
    throw new HutchError(
      'STORE_SNAPSHOT_DRIVER',
      `store snapshots need the btrfs or zfs storage driver; this store uses ${driver.name}`,
      {
        hint:
          'On btrfs every layer, container root and volume is a subvolume, so the store is snapshotted in a few ' +
          'kernel transactions; with other drivers it would be a full copy. Volume snapshots work on every ' +
          'driver: hutch volume snapshot VOLUME NAME. For store snapshots, keep the store on a btrfs mounted ' +
          'with user_subvol_rm_allowed (see hutch doctor).',
      },
    );
  }
  return new StoreSnapshots(ctx.paths.root, driver);
}

/**
 * Every lock that guards records the snapshot reads or rollback replaces:
 * no image, container, volume or network appears or goes meanwhile, and no
 * volume is snapshotted, rolled back, received into or copied up. Taken in
 * one order everywhere, waiting: the snapshots' lock, then each volume's own
 * (of the volumes there now and, for a rollback, those the snapshot brings
 * back; by name, as every other command takes a volume's lock before
 * volumes.lock and never with more than one), then the stores' locks.
 */
function lockStore(ctx: Context, snaps: StoreSnapshots, restored: string[] = []): () => void {
  const root = ctx.paths.root;
  const volumes = new VolumeStore(root);
  const names = [...new Set([...volumes.list().map((v) => v.name), ...restored])].sort();
  const paths = [
    snaps.lockPath,
    ...names.map((n) => volumes.volumeLockPath(n)),
    join(root, 'images', 'images.lock'),
    join(root, 'containers', 'containers.lock'),
    join(root, 'volumes', 'volumes.lock'),
    join(root, 'networks', '.lock'),
  ];
  const held: Lock[] = [];
  for (const p of paths) {
    mkdirSync(join(p, '..'), { recursive: true, mode: 0o700 });
    const l = lockFile(p);
    if (l) held.push(l);
  }
  return () => {
    for (const l of held.reverse()) l.release();
  };
}

function noSuchSnapshot(name: string): HutchError {
  return new HutchError('NO_SUCH_SNAPSHOT', `no store snapshot named ${name}`, {
    hint: 'List them with: hutch system snapshots',
  });
}

export function snapshotStore(ctx: Context, name: string): StoreSnapshotRecord {
  validateStoreSnapshotName(name);
  const snaps = openStoreSnapshots(ctx);
  const release = lockStore(ctx, snaps);
  try {
    snaps.sweepAbandoned();
    const pending = snaps.pendingRollback();
    if (pending !== undefined) throw unfinished(pending);
    if (snaps.get(name) !== undefined) {
      throw new HutchError('SNAPSHOT_EXISTS', `a store snapshot named ${name} exists already`, {
        hint: `Choose another name, or remove it first: hutch system snapshot rm ${name}`,
      });
    }
    return snaps.take(name);
  } finally {
    release();
  }
}

function unfinished(name: string): HutchError {
  return new HutchError('ROLLBACK_UNFINISHED', `a rollback to store snapshot ${name} did not finish`, {
    hint: `Finish it first: hutch system rollback -f ${name}`,
  });
}

export function listStoreSnapshots(ctx: Context): StoreSnapshotRecord[] {
  return openStoreSnapshots(ctx).list();
}

export function removeStoreSnapshot(ctx: Context, name: string): void {
  const snaps = openStoreSnapshots(ctx);
  const release = lockStore(ctx, snaps);
  try {
    if (snaps.get(name) === undefined) throw noSuchSnapshot(name);
    if (snaps.pendingRollback() === name) throw unfinished(name);
    snaps.remove(name);
  } finally {
    release();
  }
}

export interface StoreRollbackResult {
  snapshot: StoreSnapshotRecord;
  /** Containers stopped for the rollback. */
  stopped: string[];
}

export async function rollbackStore(
  ctx: Context,
  name: string,
  force: boolean,
): Promise<StoreRollbackResult> {
  const snaps = openStoreSnapshots(ctx);
  const snap = snaps.get(name);
  if (snap === undefined) throw noSuchSnapshot(name);
  const c = openContainers(ctx);
  const running = (): { id: string; name: string }[] =>
    c.store
      .list()
      .filter((r) => isRunning(c, r))
      .map((r) => ({ id: r.id, name: r.name }));
  const users = running();
  if (users.length > 0 && !force) {
    throw new HutchError(
      'CONTAINERS_RUNNING',
      `cannot roll the store back while containers run: ${users.map((u) => u.name).join(', ')}`,
      { hint: `Stop them first (hutch stop ${users.map((u) => u.name).join(' ')}), or use -f to stop them.` },
    );
  }
  for (const u of users) await stopContainer(c, u.id, undefined);
  const release = lockStore(ctx, snaps, snap.volumes);
  try {
    // One started meanwhile would keep the old root and volumes: look again, under the locks.
    const again = running();
    if (again.length > 0) {
      throw new HutchError(
        'CONTAINERS_RUNNING',
        `containers started during the rollback: ${again.map((u) => u.name).join(', ')}`,
        { hint: 'Run the rollback again once nothing starts containers.' },
      );
    }
    snaps.sweepAbandoned();
    const before = c.store.list().map((r) => r.id);
    snaps.rollback(snap);
    // Containers the rollback took away leave their exit file and attach link, as `rm` would not.
    const after = new Set(c.store.list().map((r) => r.id));
    for (const id of before) {
      if (after.has(id)) continue;
      rmSync(c.store.exitFile(id), { force: true });
      rmSync(join(c.store.socketsDir, id.slice(0, 12)), { force: true });
    }
  } finally {
    release();
  }
  return { snapshot: snap, stopped: users.map((u) => u.name) };
}
