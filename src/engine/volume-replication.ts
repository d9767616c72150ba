/**
 * `hutch volume send` and `hutch volume receive`: a volume's snapshot, in
 * full or as the changes since an older one, as a byte stream that another
 * store (another host, through ssh) turns back into the same volume.
 *
 * The stream is hutch's own portable format (../runtime/volume-stream.ts)
 * unless the sender is root, both snapshots are btrfs subvolumes and
 * `--portable` was not asked for: then the payload is `btrfs send`'s, which
 * the kernel only lets CAP_SYS_ADMIN make and apply, and receive needs root
 * on btrfs too. Either way the header carries the content digests, and
 * receive builds the new snapshot under a temporary name, checks it against
 * the sender's digest, and only then renames it into place and updates the
 * volume's content (by the same exchange as a rollback). A stream that is
 * damaged, cut short or made from another base leaves nothing behind.
 * Volumes that are ZFS datasets (a zfs store's) send `zfs send`'s stream
 * and receive any but btrfs's: ./volume-replication-zfs.ts.
 */
import { chmodSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { isSubvolume, onBtrfs, setReadOnly } from '../storage/drivers/btrfs-tool.ts';
import { withLockAsync } from '../sys/lock.ts';
import { treeDigest, treeSize } from '../runtime/volume-digest.ts';
import { SNAPSHOTS_DIR, validateSnapshotName } from '../runtime/volume-snapshots.ts';
import type { SnapshotRecord, VolumeSnapshots } from '../runtime/volume-snapshots.ts';
import {
  StreamReader,
  applyTarPayload,
  damaged,
  feedReceiver,
  headerBytes,
  rootMeta,
  tarPayload,
  treeChanges,
} from '../runtime/volume-stream.ts';
import type { StreamHeader } from '../runtime/volume-stream.ts';
import { copyTree, makeDataDir, removeTree } from '../runtime/volume-tree.ts';
import { parseVolumeOptions, validateVolumeName } from '../runtime/volumes.ts';
import type { VolumeRecord, VolumeStore } from '../runtime/volumes.ts';
import { HutchError } from '../util/errors.ts';
import { TEMP_MARK, lstatIfExists, writeJsonAtomic } from '../util/fs-atomic.ts';
import { randomHex } from '../util/random.ts';
import { which } from '../util/which.ts';
import type { Context } from './context.ts';
import { inUseByRunning, openSnapshots, parseSnapshotRef, runningUsers } from './volume-snapshots.ts';
import { receiveIntoZfs, receiveNewZfs, zfsSend } from './volume-replication-zfs.ts';

function btrfsTool(): string {
  return which('btrfs') ?? '/usr/sbin/btrfs';
}

export interface SendRequest {
  ref: string;
  from?: string | undefined;
  /** hutch's own format even where btrfs send could be used. */
  portable?: boolean;
}

/** The stream, as chunks to write out in order. */
export function sendVolume(ctx: Context, req: SendRequest): AsyncIterable<Buffer> {
  const { volume, snap } = parseSnapshotRef(req.ref);
  const snaps = openSnapshots(ctx);
  const v = snaps.volume(volume);
  const target = snaps.get(volume, snap);
  const base = req.from === undefined ? undefined : snaps.get(volume, req.from.replace(/^.*@/, ''));
  if (base && base.name === target.name) {
    throw new HutchError('BAD_SNAPSHOT_REF', `--from ${base.name} is the snapshot being sent`, {
      hint: 'Give --from an older snapshot that the receiving side already has.',
    });
  }
  const native =
    req.portable !== true &&
    !ctx.ident.rootless &&
    target.method === 'btrfs' &&
    (base === undefined || base.method === 'btrfs');
  const z = snaps.volumes.zfsOf(v);
  const zfsNative =
    z !== undefined &&
    req.portable !== true &&
    !ctx.ident.rootless &&
    target.method === 'zfs' &&
    (base === undefined || base.method === 'zfs');
  // A ZFS snapshot's content is read through a temporary clone, released once sent.
  const targetView = snaps.openContent(volume, snap);
  const baseView = base ? snaps.openContent(volume, base.name) : undefined;
  const release = (): void => {
    targetView.release();
    baseView?.release();
  };
  const header: StreamHeader = {
    format: native ? 'btrfs' : zfsNative ? 'zfs' : 'tar',
    volume: { name: volume, labels: v.labels, options: v.options, copiedUp: v.copiedUp === true },
    snapshot: {
      name: target.name,
      id: target.id,
      created: target.created,
      digest: snaps.digest(volume, snap),
    },
    ...(base ? { base: { name: base.name, id: base.id, digest: snaps.digest(volume, base.name) } } : {}),
    root: rootMeta(targetView.path),
    deleted: [],
  };
  const targetData = targetView.path;
  const baseData = baseView?.path;
  if (native) return nativeSend(header, targetData, baseData);
  if (zfsNative) {
    release();
    return zfsSend(header, z, volume, target, base);
  }
  const changes = treeChanges(targetData, baseData);
  header.deleted = changes.deleted;
  return (async function* () {
    try {
      yield headerBytes(header);
      yield* tarPayload(targetData, changes);
    } finally {
      release();
    }
  })();
}

async function* nativeSend(
  header: StreamHeader,
  target: string,
  base: string | undefined,
): AsyncGenerator<Buffer> {
  yield headerBytes(header);
  const { spawn } = process.getBuiltinModule('node:child_process');
  const args = ['send', '-q', ...(base ? ['-p', base] : []), target];
  const child = spawn(btrfsTool(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  const code = await exited;
  if (code !== 0) {
    throw new HutchError('VOLUME_SEND', `btrfs send failed: ${stderr.trim()}`, {
      hint: "Send hutch's portable format instead: hutch volume send --portable ...",
    });
  }
}

function nativeReceive(dir: string, payload: AsyncIterable<Buffer>): Promise<void> {
  return feedReceiver(btrfsTool(), ['receive', '-e', dir], payload, 'btrfs receive');
}

export interface ReceiveResult {
  volume: string;
  snapshot: SnapshotRecord;
  created: boolean;
}

function baseMismatch(volume: string, base: NonNullable<StreamHeader['base']>, why: string): HutchError {
  return new HutchError(
    'STREAM_BASE_MISMATCH',
    `the stream holds the changes since snapshot ${base.name}, and ${why}`,
    {
      hint: `Send the whole snapshot instead (without --from), or from a snapshot both sides have (hutch volume snapshots ${volume}).`,
    },
  );
}

/** Builds the received snapshot's content at `dir/_data` and checks its digest. */
async function buildSnapshot(
  ctx: Context,
  dir: string,
  header: StreamHeader,
  payload: AsyncIterable<Buffer>,
  baseData: string | undefined,
): Promise<string> {
  const data = join(dir, '_data');
  if (header.format === 'btrfs') {
    if (ctx.ident.rootless || !onBtrfs(dir)) {
      throw new HutchError(
        'STREAM_NEEDS_ROOT',
        'the stream was made by btrfs send, which only root on btrfs can receive',
        {
          hint: "Send it again in hutch's portable format: hutch volume send --portable ...",
        },
      );
    }
    await nativeReceive(dir, payload);
  } else {
    if (baseData) copyTree(baseData, data, { readOnly: false });
    else makeDataDir(data);
    await applyTarPayload(data, header, payload, ctx.ident.rootless);
  }
  if (!lstatIfExists(data)?.isDirectory()) throw damaged('it made no volume content');
  const digest = treeDigest(data);
  if (digest !== header.snapshot.digest) {
    throw damaged(
      `what it holds does not match its snapshot's digest (${digest}, expected ${header.snapshot.digest})`,
    );
  }
  if (isSubvolume(data) && header.format === 'tar') setReadOnly(data, true);
  return digest;
}

function snapshotRecord(volume: string, header: StreamHeader, data: string, digest: string): SnapshotRecord {
  return {
    name: header.snapshot.name,
    volume,
    id: header.snapshot.id,
    created: header.snapshot.created,
    method: isSubvolume(data) ? 'btrfs' : 'copy',
    size: treeSize(data),
    digest,
    copiedUp: header.volume.copiedUp,
    received: { from: header.volume.name, format: header.format },
  };
}

/** A new volume: made whole under a temporary name, with its snapshot, then renamed into place. */
async function receiveNew(
  ctx: Context,
  store: VolumeStore,
  name: string,
  header: StreamHeader,
  payload: AsyncIterable<Buffer>,
): Promise<SnapshotRecord> {
  if (header.base) throw baseMismatch(name, header.base, `there is no volume ${name} here to have it`);
  if (parseVolumeOptions(header.volume.options).kind !== 'plain')
    throw damaged('it names a volume that is not a plain one');
  const tmp = join(store.dir, `${TEMP_MARK}recv-${process.pid}-${randomHex(4)}`);
  mkdirSync(join(tmp, SNAPSHOTS_DIR), { recursive: true, mode: 0o700 });
  try {
    const staged = join(tmp, SNAPSHOTS_DIR, header.snapshot.name);
    mkdirSync(staged, { mode: 0o700 });
    const digest = await buildSnapshot(ctx, staged, header, payload, undefined);
    const snap = snapshotRecord(name, header, join(staged, '_data'), digest);
    writeJsonAtomic(join(staged, 'snapshot.json'), snap);
    copyTree(join(staged, '_data'), join(tmp, '_data'), { readOnly: false });
    const record: VolumeRecord = {
      name,
      driver: 'local',
      created: new Date().toISOString(),
      labels: header.volume.labels,
      options: header.volume.options,
      mountpoint: store.mountpoint(name),
      copiedUp: header.volume.copiedUp,
    };
    const kind = parseVolumeOptions(record.options);
    if (kind.kind === 'plain' && kind.uid !== undefined) record.uid = kind.uid;
    if (kind.kind === 'plain' && kind.gid !== undefined) record.gid = kind.gid;
    writeJsonAtomic(join(tmp, 'volume.json'), record);
    chmodSync(tmp, 0o700);
    store.withStoreLock(() => {
      if (lstatIfExists(join(store.dir, name))) {
        throw new HutchError('VOLUME_EXISTS', `volume ${name} appeared while the stream was received`);
      }
      renameSync(tmp, join(store.dir, name));
    });
    return snap;
  } catch (e) {
    removeTree(tmp);
    throw e;
  }
}

/**
 * What an existing volume must have for the stream: no snapshot of its
 * name yet, and the stream's base (same id, same content). Answers the base.
 */
function checkIncoming(
  snaps: VolumeSnapshots,
  v: VolumeRecord,
  header: StreamHeader,
): SnapshotRecord | undefined {
  const have = snaps.find(v.name, header.snapshot.name);
  if (have) {
    throw new HutchError(
      'SNAPSHOT_EXISTS',
      `volume ${v.name} already has a snapshot ${header.snapshot.name}`,
      {
        hint:
          have.id === header.snapshot.id
            ? 'It was received before: send the changes since it instead (--from).'
            : `Remove it first (hutch volume snapshot rm ${v.name} ${header.snapshot.name}), or receive into another volume.`,
      },
    );
  }
  if (!header.base) return undefined;
  {
    const base = snaps.find(v.name, header.base.name);
    if (!base) throw baseMismatch(v.name, header.base, `volume ${v.name} has no snapshot of that name`);
    if (base.id !== header.base.id) {
      throw baseMismatch(v.name, header.base, `${v.name}@${base.name} here is another snapshot of that name`);
    }
    if (snaps.digest(v.name, base.name) !== header.base.digest) {
      throw baseMismatch(
        v.name,
        header.base,
        `${v.name}@${base.name} here does not hold what the sender's did`,
      );
    }
    return base;
  }
}

/** An existing volume: the snapshot is staged among its snapshots, then becomes its content. */
async function receiveInto(
  ctx: Context,
  snaps: VolumeSnapshots,
  v: VolumeRecord,
  header: StreamHeader,
  payload: AsyncIterable<Buffer>,
): Promise<SnapshotRecord> {
  const base = checkIncoming(snaps, v, header);
  const baseData = base ? snaps.dataOf(v.name, base.name) : undefined;
  const users = runningUsers(ctx, v.name);
  if (users.length > 0) throw inUseByRunning('receive into', v.name, users);
  const staged = snaps.staging(v.name, `recv-${header.snapshot.name}`);
  try {
    const digest = await buildSnapshot(ctx, staged, header, payload, baseData);
    const snap = snapshotRecord(v.name, header, join(staged, '_data'), digest);
    snaps.publish(staged, snap);
    snaps.replaceContent(v, snaps.dataOf(v.name, snap.name));
    return snap;
  } catch (e) {
    removeTree(staged);
    throw e;
  }
}

export async function receiveVolume(
  ctx: Context,
  name: string,
  input: AsyncIterable<unknown>,
): Promise<ReceiveResult> {
  validateVolumeName(name);
  // The store first: entering the namespace may re-execute hutch, which must find stdin unread.
  const snaps = openSnapshots(ctx);
  const store = snaps.volumes;
  const reader = new StreamReader(input);
  const header = await reader.header();
  validateSnapshotName(header.snapshot.name);
  if (header.base) validateSnapshotName(header.base.name);
  return withLockAsync(store.volumeLockPath(name), async () => {
    const existing = store.find(name);
    // A zfs store takes every stream but btrfs's into datasets (./volume-replication-zfs.ts).
    const z = header.format === 'btrfs' || ctx.ident.rootless ? undefined : store.zfs();
    const zv = existing ? store.zfsOf(existing) : z;
    if (header.format === 'zfs' && (z === undefined || zv === undefined)) {
      throw new HutchError(
        'STREAM_NEEDS_ROOT',
        existing && z !== undefined
          ? `the stream was made by zfs send, and volume ${name} here is no ZFS dataset (it predates them)`
          : 'the stream was made by zfs send, which only root on a store with the zfs driver can receive',
        { hint: "Send it again in hutch's portable format: hutch volume send --portable ..." },
      );
    }
    const opts = { rootless: ctx.ident.rootless };
    if (!existing) {
      if (header.base) throw baseMismatch(name, header.base, `there is no volume ${name} here to have it`);
      const snapshot =
        z !== undefined
          ? await receiveNewZfs(opts, store, z, name, header, reader.rest())
          : await receiveNew(ctx, store, name, header, reader.rest());
      return { volume: name, snapshot, created: true };
    }
    snaps.volume(name);
    if (zv === undefined) {
      const snapshot = await receiveInto(ctx, snaps, existing, header, reader.rest());
      return { volume: name, snapshot, created: false };
    }
    const base = checkIncoming(snaps, existing, header);
    const users = runningUsers(ctx, name);
    if (users.length > 0) throw inUseByRunning('receive into', name, users);
    const snapshot = await receiveIntoZfs(opts, snaps, zv, existing, header, base, reader.rest());
    return { volume: name, snapshot, created: false };
  });
}
