/**
 * `hutch volume snapshot|snapshots|rollback|clone`: the copy-on-write
 * features of named volumes (the store side is ../runtime/volume-snapshots.ts).
 *
 * Rollback and running containers: a running container has the volume's
 * old tree bind-mounted, so replacing the tree under it would leave it
 * writing to content that no longer is the volume. Rollback therefore
 * refuses while a running container uses the volume; with -f it stops
 * those containers (as `hutch stop` does), rolls back, and starts them
 * again, so that a service comes back on the restored data, as users of
 * `restart` expect. Containers that were not running stay as they were.
 */
import { VolumeSnapshots } from '../runtime/volume-snapshots.ts';
import type { SnapshotRecord } from '../runtime/volume-snapshots.ts';
import type { CopyMethod } from '../runtime/volume-tree.ts';
import type { VolumeRecord } from '../runtime/volumes.ts';
import { HutchError } from '../util/errors.ts';
import { humanSize } from '../util/human.ts';
import { log } from '../util/log.ts';
import { openContainers } from './containers/open.ts';
import { startContainer } from './containers/start.ts';
import { isRunning, stopContainer } from './containers/stop.ts';
import type { Context } from './context.ts';
import { openVolumes } from './volumes.ts';

export function openSnapshots(ctx: Context): VolumeSnapshots {
  return new VolumeSnapshots(openVolumes(ctx));
}

/** `VOLUME@SNAP` into its parts. */
export function parseSnapshotRef(ref: string): { volume: string; snap: string } {
  const at = ref.indexOf('@');
  if (at <= 0 || at === ref.length - 1) {
    throw new HutchError('BAD_SNAPSHOT_REF', `"${ref}" does not name a snapshot`, {
      hint: 'Name a snapshot as VOLUME@SNAPSHOT, e.g. pgdata@before-upgrade.',
    });
  }
  return { volume: ref.slice(0, at), snap: ref.slice(at + 1) };
}

/** Said once per copy that cost the whole size: users chose snapshots expecting them to be cheap. */
export function warnIfFullCopy(method: CopyMethod, what: string, bytes: number): void {
  if (method !== 'copy') return;
  log.warn(
    `${what} is a full copy (${humanSize(bytes)}): the store's filesystem has neither btrfs snapshots nor reflinks`,
  );
}

export function snapshotVolume(ctx: Context, volume: string, snap: string): SnapshotRecord {
  const rec = openSnapshots(ctx).create(volume, snap);
  warnIfFullCopy(rec.method, `snapshot ${snap} of volume ${volume}`, rec.size);
  return rec;
}

export function listSnapshots(ctx: Context, volume: string): SnapshotRecord[] {
  const snaps = openSnapshots(ctx);
  snaps.volume(volume);
  return snaps.list(volume);
}

export function removeSnapshot(ctx: Context, volume: string, snap: string): void {
  openSnapshots(ctx).remove(volume, snap);
}

/** A `volume snapshots` row. */
export function snapshotRow(s: SnapshotRecord): Record<string, unknown> {
  return {
    Name: s.name,
    Volume: s.volume,
    CreatedAt: s.created.replace(/\.\d+Z$/, 'Z'),
    Size: humanSize(s.size),
    SizeBytes: s.size,
    Method: s.method,
    ID: s.id,
  };
}

/** The running containers that have the volume mounted. */
export function runningUsers(ctx: Context, volume: string): { id: string; name: string }[] {
  const c = openContainers(ctx);
  return c.store
    .list()
    .filter((r) => r.hostConfig.mounts.some((m) => m.type === 'volume' && m.name === volume))
    .filter((r) => isRunning(c, r))
    .map((r) => ({ id: r.id, name: r.name }));
}

export function inUseByRunning(what: string, volume: string, users: { name: string }[]): HutchError {
  return new HutchError(
    'VOLUME_IN_USE',
    `cannot ${what} volume ${volume}: running container(s) ${users.map((u) => u.name).join(', ')} use it`,
    {
      hint: `Stop them first (hutch stop ${users.map((u) => u.name).join(' ')})${what === 'roll back' ? ', or use -f to stop them, roll back and start them again' : ''}.`,
    },
  );
}

export interface RollbackResult {
  snapshot: SnapshotRecord;
  /** Containers stopped for the rollback and started again. */
  restarted: string[];
}

export async function rollbackVolume(
  ctx: Context,
  volume: string,
  snap: string,
  force: boolean,
): Promise<RollbackResult> {
  const snaps = openSnapshots(ctx);
  snaps.volume(volume);
  snaps.get(volume, snap);
  const users = runningUsers(ctx, volume);
  if (users.length > 0 && !force) throw inUseByRunning('roll back', volume, users);
  const c = openContainers(ctx);
  for (const u of users) await stopContainer(c, u.id, undefined);
  const restarted: string[] = [];
  try {
    // A container started meanwhile by someone else would hold the old tree: check again, under no illusion.
    const again = runningUsers(ctx, volume);
    if (again.length > 0) throw inUseByRunning('roll back', volume, again);
    return { snapshot: snaps.rollback(volume, snap), restarted };
  } finally {
    for (const u of users) {
      try {
        const started = await startContainer(c, u.id, { kind: 'detached' });
        started.conmon.release();
        restarted.push(u.name);
      } catch (e) {
        log.warn(
          `container ${u.name} was stopped for the rollback and could not start again: ${(e as Error).message}`,
        );
      }
    }
  }
}

export function cloneVolume(
  ctx: Context,
  ref: string,
  newName: string,
): { volume: VolumeRecord; method: CopyMethod } {
  const { volume, snap } = parseSnapshotRef(ref);
  const snaps = openSnapshots(ctx);
  const r = snaps.clone(volume, snap, newName);
  warnIfFullCopy(r.method, `clone ${newName}`, snaps.get(volume, snap).size);
  return r;
}
