/**
 * Volume replication where the volume is a ZFS dataset (a zfs store, so
 * root): the sending side's payload is `zfs send` (`-i` from the base's
 * snapshot) unless `--portable`; the receiving side takes a zfs stream
 * with `zfs receive`, and hutch's portable tar stream by applying it to a
 * the volume's own dataset, rolled back to the base first. Either
 * way the new snapshot keeps the sender's id (ZFS snapshot names are ids,
 * ../storage/drivers/zfs-volumes.ts), and its content is checked against
 * the sender's digest before anything is kept.
 *
 * What ZFS allows and these follow: an increment is received only by a
 * volume whose newest snapshot is the increment's base (`zfs receive -F`
 * discards what was written since, as any receive replaces the content);
 * a full stream only makes a new volume (into an existing one it would
 * destroy that volume's snapshots).
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { treeDigest } from '../runtime/volume-digest.ts';
import { SNAPSHOTS_DIR } from '../runtime/volume-snapshots.ts';
import type { SnapshotRecord, VolumeSnapshots } from '../runtime/volume-snapshots.ts';
import { applyTarPayload, damaged, feedReceiver, headerBytes } from '../runtime/volume-stream.ts';
import type { StreamHeader } from '../runtime/volume-stream.ts';
import { parseVolumeOptions } from '../runtime/volumes.ts';
import type { VolumeRecord, VolumeStore } from '../runtime/volumes.ts';
import { STORE_SNAP_PREFIX, zfsTool } from '../storage/drivers/zfs-tool.ts';
import type { ZfsVolumes } from '../storage/drivers/zfs-volumes.ts';
import { HutchError } from '../util/errors.ts';
import { TEMP_MARK, lstatIfExists, writeJsonAtomic } from '../util/fs-atomic.ts';
import { randomHex } from '../util/random.ts';

/** Snapshot ids become ZFS snapshot names: only what hutch makes (hex) is taken from a stream. */
const SNAPSHOT_ID = /^[a-f0-9]{8,64}$/;

function checkId(id: string): void {
  if (!SNAPSHOT_ID.test(id)) throw damaged(`its snapshot id "${id}" is not one hutch makes`);
}

/** `zfs send` of a volume's snapshot, after the header. */
export async function* zfsSend(
  header: StreamHeader,
  z: ZfsVolumes,
  volume: string,
  target: SnapshotRecord,
  base: SnapshotRecord | undefined,
): AsyncGenerator<Buffer> {
  yield headerBytes(header);
  const args = ['send', ...(base ? ['-i', z.snapshot(volume, base.id)] : []), z.snapshot(volume, target.id)];
  const { spawn } = process.getBuiltinModule('node:child_process');
  const child = spawn(zfsTool() ?? 'zfs', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  if ((await exited) !== 0) {
    throw new HutchError('VOLUME_SEND', `zfs send failed: ${stderr.trim()}`, {
      hint: "Send hutch's portable format instead: hutch volume send --portable ...",
    });
  }
}

/** Feeds `payload` to `zfs receive ARGS`; a refusal is the stream's fault or the base's. */
function zfsReceive(args: string[], payload: AsyncIterable<Buffer>): Promise<void> {
  return feedReceiver(zfsTool() ?? 'zfs', ['receive', ...args], payload, 'zfs receive');
}

function record(volume: string, header: StreamHeader, z: ZfsVolumes, digest: string): SnapshotRecord {
  return {
    name: header.snapshot.name,
    volume,
    id: header.snapshot.id,
    created: header.snapshot.created,
    method: 'zfs',
    size: z.referenced(volume, header.snapshot.id),
    digest,
    copiedUp: header.volume.copiedUp,
    received: { from: header.volume.name, format: header.format === 'zfs' ? 'zfs' : 'tar' },
  };
}

/** The digest of a dataset's snapshot, read through a temporary clone. */
function snapshotDigest(z: ZfsVolumes, dataset: string, id: string, dir: string): string {
  const release = z.view(dataset, id, dir);
  try {
    return treeDigest(dir);
  } finally {
    release();
  }
}

function checkDigest(got: string, header: StreamHeader): void {
  if (got !== header.snapshot.digest) {
    throw damaged(
      `what it holds does not match its snapshot's digest (${got}, expected ${header.snapshot.digest})`,
    );
  }
}

/**
 * A new volume from a full stream: the dataset is received (or filled from
 * the tar) as `.tmp-recv-*`, snapshotted, checked, then renamed to the
 * volume's name as its record appears, under the store's lock.
 */
export async function receiveNewZfs(
  ctx: { rootless: boolean },
  store: VolumeStore,
  z: ZfsVolumes,
  name: string,
  header: StreamHeader,
  payload: AsyncIterable<Buffer>,
): Promise<SnapshotRecord> {
  if (parseVolumeOptions(header.volume.options).kind !== 'plain')
    throw damaged('it names a volume that is not a plain one');
  checkId(header.snapshot.id);
  const id = header.snapshot.id;
  const stage = `${TEMP_MARK}recv-${process.pid}-${randomHex(4)}`;
  const tmp = join(store.dir, stage);
  mkdirSync(join(tmp, SNAPSHOTS_DIR, header.snapshot.name), { recursive: true, mode: 0o700 });
  mkdirSync(join(tmp, '_data'), { mode: 0o755 });
  try {
    z.ensureParent();
    if (header.format === 'zfs') {
      await zfsReceive(['-u', z.snapshot(stage, id)], payload);
      z.keepUnmounted(stage);
    } else {
      z.create(stage);
      const fill = join(tmp, 'fill');
      z.place(stage, fill);
      await applyTarPayload(fill, header, payload, ctx.rootless);
      z.unplace(stage);
      rmSync(fill, { recursive: true, force: true });
      z.takeSnapshot(stage, id);
    }
    checkDigest(snapshotDigest(z, stage, id, join(tmp, 'view')), header);
    const snap = record(stage, header, z, header.snapshot.digest);
    snap.volume = name;
    writeJsonAtomic(join(tmp, SNAPSHOTS_DIR, header.snapshot.name, 'snapshot.json'), snap);
    const rec: VolumeRecord = {
      name,
      driver: 'local',
      created: new Date().toISOString(),
      labels: header.volume.labels,
      options: header.volume.options,
      mountpoint: store.mountpoint(name),
      copiedUp: header.volume.copiedUp,
      zfs: true,
    };
    const kind = parseVolumeOptions(rec.options);
    if (kind.kind === 'plain' && kind.uid !== undefined) rec.uid = kind.uid;
    if (kind.kind === 'plain' && kind.gid !== undefined) rec.gid = kind.gid;
    writeJsonAtomic(join(tmp, 'volume.json'), rec);
    store.withStoreLock(() => {
      if (lstatIfExists(join(store.dir, name))) {
        throw new HutchError('VOLUME_EXISTS', `volume ${name} appeared while the stream was received`);
      }
      store.dropOrphanDataset(z, name);
      // Unmounted since it was received or filled: a rename, then the record beside it.
      z.unplace(stage);
      z.rename(stage, name);
      renameSync(tmp, join(store.dir, name));
    });
    z.place(name, rec.mountpoint);
    return snap;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (z.exists(stage)) z.destroy(stage);
    throw e;
  }
}

/**
 * An increment into an existing dataset volume whose newest snapshot is
 * the base. A zfs stream goes to `zfs receive -F`. A tar one is applied to
 * the volume's dataset itself, rolled back to the base first and marked
 * while it is written (zfs-fuse receives no increment made from a clone,
 * so it cannot be built aside): a receive killed half way leaves the mark,
 * and the volume's next use rolls it back to the base
 * (VolumeStore.ensureContent). Then the new snapshot is checked and its
 * record published; a mismatch rolls the volume back to the base.
 */
export async function receiveIntoZfs(
  ctx: { rootless: boolean },
  snaps: VolumeSnapshots,
  z: ZfsVolumes,
  v: VolumeRecord,
  header: StreamHeader,
  base: SnapshotRecord | undefined,
  payload: AsyncIterable<Buffer>,
): Promise<SnapshotRecord> {
  if (base === undefined || base.method !== 'zfs') {
    throw new HutchError(
      'STREAM_NEEDS_NEW_VOLUME',
      `volume ${v.name} is a ZFS dataset, which takes a whole snapshot only as a new volume`,
      {
        hint: `Receive it under a name no volume has, or send the changes since a snapshot ${v.name} has (--from).`,
      },
    );
  }
  checkId(header.snapshot.id);
  // Store snapshots' tags count too: ZFS would have to destroy them.
  const newest = z.snapshotIds(v.name, { deferred: true, store: true }).at(-1);
  if (newest !== base.id) {
    const names = snaps.list(v.name).filter((s) => s.created > base.created);
    const store = newest?.startsWith(STORE_SNAP_PREFIX) === true;
    throw new HutchError(
      'SNAPSHOT_NOT_NEWEST',
      `volume ${v.name} is on ZFS, which applies an increment only to its newest snapshot, and ${base.name} is not` +
        (store ? ': a store snapshot taken since holds the volume' : ''),
      {
        hint: store
          ? 'Remove the newer store snapshots (hutch system snapshots), or receive into a new volume.'
          : `Remove the newer snapshots first (${names.map((s) => s.name).join(', ') || 'see hutch volume snapshots'}), or receive into a new volume.`,
      },
    );
  }
  snaps.volumes.ensureContent(v);
  const staged = snaps.staging(v.name, `recv-${header.snapshot.name}`);
  try {
    if (header.format === 'zfs') {
      try {
        await zfsReceive(['-F', z.snapshot(v.name, header.snapshot.id)], payload);
      } finally {
        z.refresh(v.name);
      }
    } else {
      z.markReceiving(v.name, base.id);
      z.rollback(v.name, base.id);
      try {
        await applyTarPayload(v.mountpoint, header, payload, ctx.rootless);
        checkDigest(treeDigest(v.mountpoint), header);
      } catch (e) {
        z.rollback(v.name, base.id);
        z.markReceiving(v.name, undefined);
        throw e;
      }
      z.takeSnapshot(v.name, header.snapshot.id);
      z.markReceiving(v.name, undefined);
    }
    try {
      checkDigest(snapshotDigest(z, v.name, header.snapshot.id, join(staged, 'view')), header);
    } catch (e) {
      z.rollback(v.name, base.id); // the received snapshot goes, the content is the base's again
      throw e;
    }
    return snaps.publish(staged, record(v.name, header, z, header.snapshot.digest));
  } catch (e) {
    rmSync(staged, { recursive: true, force: true });
    throw e;
  }
}
