/**
 * Named volumes, local driver: `ROOT/volumes/NAME/_data` holds the content
 * and `ROOT/volumes/NAME/volume.json` the record. A volume appears by one
 * rename of a fully built `.tmp-*` directory and disappears by one rename to
 * a `.tmp-*` name before it is deleted, so a crash leaves only `.tmp-*`
 * leftovers, which listing ignores and cleanupTemp() removes. Every change
 * holds `volumes.lock`; work on one volume that takes long (a snapshot's
 * copy, a receive) holds that volume's own lock, `.locks/NAME`, taken
 * before `volumes.lock` wherever both are needed.
 *
 * Where the store is on btrfs, a volume's `_data` is a subvolume, so that
 * it can be snapshotted (./volume-snapshots.ts); elsewhere a directory.
 *
 * The engine runs inside the user namespace: uid N here is the container's
 * uid N, so plain chown gives a volume to a container user.
 */
import { randomHex } from '../util/random.ts';
import {
  chmodSync,
  chownSync,
  constants,
  copyFileSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { parseMountInfo } from '../host/cgroups.ts';
import { isSubvolume } from '../storage/drivers/btrfs-tool.ts';
import { recordedDataset } from '../storage/drivers/zfs-probe.ts';
import { ZfsVolumes } from '../storage/drivers/zfs-volumes.ts';
import { withLock } from '../sys/lock.ts';
import { sys } from '../sys/native.ts';
import { errnoCode, HutchError } from '../util/errors.ts';
import { lstatIfExists, readIfExists, TEMP_MARK, writeJsonAtomic } from '../util/fs-atomic.ts';
import { log } from '../util/log.ts';
import { exchange, makeDataDir, removeTree } from './volume-tree.ts';

export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const LOCK_NAME = 'volumes.lock';
/** Per-volume locks; a name no volume can have (volume names start with a letter or digit). */
const LOCKS_DIR = '.locks';
/** A directory entry's limit (NAME_MAX): longer names cannot be stored. */
const MAX_NAME = 255;

export interface VolumeRecord {
  name: string;
  driver: 'local';
  /** ISO 8601. */
  created: string;
  labels: Record<string, string>;
  /** As given with -o: type, device, o. */
  options: Record<string, string>;
  /** Where the content is: `ROOT/volumes/NAME/_data` (for a bind volume, see mountOf). */
  mountpoint: string;
  uid?: number;
  gid?: number;
  /** The image's content was copied in at the first mount; it never is again. */
  copiedUp?: boolean;
  /** The content is the ZFS dataset DATASET/volumes/NAME (a zfs store's volumes since snapshots came to ZFS). */
  zfs?: boolean;
}

export interface CreateVolumeOptions {
  name?: string | undefined;
  labels?: Record<string, string>;
  options?: Record<string, string>;
}

/**
 * What the local driver's options mean. A plain volume is a directory; a
 * tmpfs volume is a fresh tmpfs at each container start; a bind volume is a
 * host directory.
 */
export type VolumeKind =
  | { kind: 'plain'; uid?: number; gid?: number }
  | { kind: 'tmpfs'; mountOptions: string[] }
  | { kind: 'bind'; device: string; recursive: boolean; mountOptions: string[] };

/** How the container side mounts a volume (OCI mount entries). */
export type VolumeMount =
  | { type: 'bind'; source: string; recursive: boolean; options: string[] }
  | { type: 'tmpfs'; source: 'tmpfs'; options: string[] };

function badOption(message: string): HutchError {
  return new HutchError('BAD_VOLUME_OPTION', message, {
    hint:
      'The local driver takes: -o type=tmpfs -o device=tmpfs [-o o=size=100m,uid=N,...], ' +
      '-o type=none -o o=bind -o device=/host/dir, or -o o=uid=N,gid=N for a plain volume.',
  });
}

/** Mount flags that both tmpfs and bind volumes may carry. */
const MOUNT_FLAGS = new Set([
  'ro',
  'rw',
  'nosuid',
  'suid',
  'nodev',
  'dev',
  'noexec',
  'exec',
  'atime',
  'noatime',
  'relatime',
  'norelatime',
  'strictatime',
  'nostrictatime',
  'diratime',
  'nodiratime',
  'sync',
  'async',
  'dirsync',
]);

/** tmpfs's own KEY=VALUE options, with what each value must look like. */
const TMPFS_VALUES: Record<string, RegExp> = {
  size: /^\d+[kKmMgGtTpPeE%]?$/,
  nr_blocks: /^\d+[kKmMgGtTpPeE%]?$/,
  nr_inodes: /^\d+[kKmMgGtTpPeE%]?$/,
  mode: /^[0-7]{1,4}$/,
  uid: /^\d+$/,
  gid: /^\d+$/,
};

function parseId(what: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 0xfffffffe) throw badOption(`${what}=${value}: not a numeric id`);
  return n;
}

function splitO(o: string | undefined): string[] {
  return (o ?? '').split(',').filter((s) => s !== '');
}

/** Validates -o options (docker's local driver, plus podman's uid/gid on plain volumes). */
export function parseVolumeOptions(options: Record<string, string>): VolumeKind {
  for (const key of Object.keys(options)) {
    if (key !== 'type' && key !== 'device' && key !== 'o') {
      throw badOption(
        key === 'size'
          ? 'size needs a filesystem with project quotas, which hutch does not manage'
          : `invalid option "${key}"`,
      );
    }
  }
  const { type, device, o } = options;
  const parts = splitO(o);
  if (type === undefined && device === undefined) {
    const plain: { kind: 'plain'; uid?: number; gid?: number } = { kind: 'plain' };
    for (const p of parts) {
      const m = /^(uid|gid)=(.*)$/.exec(p);
      if (!m)
        throw badOption(`"${p}" in o= needs -o type and -o device; a plain volume takes only uid= and gid=`);
      plain[m[1] as 'uid' | 'gid'] = parseId(m[1]!, m[2]!);
    }
    return plain;
  }
  if (type === undefined || type === '') throw badOption('missing required option "type"');
  if (device === undefined || device === '') throw badOption('missing required option "device"');
  if (type === 'tmpfs') {
    for (const p of parts) {
      const eq = p.indexOf('=');
      if (eq < 0 ? MOUNT_FLAGS.has(p) : TMPFS_VALUES[p.slice(0, eq)]?.test(p.slice(eq + 1))) continue;
      throw badOption(`invalid tmpfs mount option "${p}"`);
    }
    return { kind: 'tmpfs', mountOptions: parts };
  }
  if (type === 'none') {
    const binds = parts.filter((p) => p === 'bind' || p === 'rbind');
    if (binds.length === 0) throw badOption('type=none needs -o o=bind (or rbind)');
    const rest = parts.filter((p) => p !== 'bind' && p !== 'rbind');
    for (const p of rest) if (!MOUNT_FLAGS.has(p)) throw badOption(`invalid bind mount option "${p}"`);
    if (!device.startsWith('/'))
      throw badOption(`device=${device}: a bind volume needs an absolute host path`);
    let st: Stats;
    try {
      st = statSync(device);
    } catch (e) {
      throw badOption(`device=${device}: ${errnoCode(e) === 'ENOENT' ? 'no such directory' : String(e)}`);
    }
    if (!st.isDirectory()) throw badOption(`device=${device}: not a directory`);
    return { kind: 'bind', device, recursive: binds.includes('rbind'), mountOptions: rest };
  }
  throw badOption(`type=${type} is not supported: hutch mounts tmpfs and bind (type=none) volumes only`);
}

export function validateVolumeName(name: string): void {
  if (!VOLUME_NAME.test(name) || name.length > MAX_NAME || name === LOCK_NAME) {
    throw new HutchError(
      'BAD_VOLUME_NAME',
      `"${name}" is not a valid volume name: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed` +
        (name === LOCK_NAME ? ` (and ${LOCK_NAME} is reserved)` : ''),
      { hint: 'To mount a host directory, give an absolute path instead of a volume name.' },
    );
  }
}

export function noSuchVolume(name: string): HutchError {
  return new HutchError('NO_SUCH_VOLUME', `no such volume: ${name}`, {
    hint: 'See the volumes that exist with: hutch volume ls',
    exitCode: 1,
  });
}

function sameOptions(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** How to mount a volume into a container. */
export function mountOf(v: VolumeRecord): VolumeMount {
  const kind = parseKindQuietly(v);
  if (kind.kind === 'tmpfs') return { type: 'tmpfs', source: 'tmpfs', options: kind.mountOptions };
  if (kind.kind === 'bind')
    return { type: 'bind', source: kind.device, recursive: kind.recursive, options: kind.mountOptions };
  return { type: 'bind', source: v.mountpoint, recursive: false, options: [] };
}

/** A stored record was validated when it was made; a bind device may have gone since. */
function parseKindQuietly(v: VolumeRecord): VolumeKind {
  try {
    return parseVolumeOptions(v.options);
  } catch (e) {
    throw new HutchError('VOLUME_UNUSABLE', `volume ${v.name}: ${(e as Error).message}`, {
      hint: 'Recreate the host directory it binds, or remove the volume (hutch volume rm).',
    });
  }
}

export class VolumeStore {
  readonly dir: string;
  readonly lockPath: string;
  private readonly root: string;
  /** null: the store is not a zfs one; undefined: not asked yet. */
  private zfsVolumes: ZfsVolumes | null | undefined;

  constructor(root: string) {
    this.root = root;
    this.dir = join(root, 'volumes');
    this.lockPath = join(this.dir, LOCK_NAME);
  }

  /**
   * Where a zfs store keeps volumes as datasets (../storage/drivers/zfs-volumes.ts);
   * undefined for other stores. Only a zfs store records a dataset, and only root makes one.
   */
  zfs(): ZfsVolumes | undefined {
    if (this.zfsVolumes === undefined) {
      const dataset = recordedDataset(this.root);
      this.zfsVolumes = dataset === undefined ? null : new ZfsVolumes(dataset);
    }
    return this.zfsVolumes ?? undefined;
  }

  /** The volume's datasets when its content is one; undefined for a directory's content. */
  zfsOf(v: VolumeRecord): ZfsVolumes | undefined {
    if (v.zfs !== true) return undefined;
    const z = this.zfs();
    if (z === undefined) {
      throw new HutchError(
        'VOLUME_CORRUPT',
        `volume ${v.name} says its content is a ZFS dataset, but this store has none`,
        {
          hint: `Remove it with: hutch volume rm -f ${v.name}`,
        },
      );
    }
    return z;
  }

  /**
   * Mounts a dataset volume's content where it is missing (after a reboot or a
   * restart of zfs-fuse, or a create killed before its mount): its `_data`
   * would otherwise be an empty directory that writes go to. A receive
   * killed half way is rolled back to its base here too. For use under the
   * volume's lock, which removal and receive hold too.
   */
  ensureContent(v: VolumeRecord): void {
    const z = this.zfsOf(v);
    if (z === undefined) return;
    const data = lstatIfExists(v.mountpoint);
    const dir = lstatIfExists(join(v.mountpoint, '..'));
    if (!data || !dir || data.dev === dir.dev) z.place(v.name, v.mountpoint);
    if (z.finishInterrupted(v.name))
      log.warn(`volume ${v.name}: a receive was interrupted; rolled back to its base`);
  }

  mountpoint(name: string): string {
    return join(this.dir, name, '_data');
  }

  private ensureDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private locked<T>(fn: () => T): T {
    this.ensureDir();
    return withLock(this.lockPath, fn);
  }

  /** Holds the store's lock (short changes: a volume appearing or going). */
  withStoreLock<T>(fn: () => T): T {
    return this.locked(fn);
  }

  /**
   * The lock file of one volume. It lives outside the volume's directory,
   * which removal renames away: a lock on a file in there would lock the
   * removed volume, not a new one of the same name.
   */
  volumeLockPath(name: string): string {
    validateVolumeName(name);
    const dir = join(this.dir, LOCKS_DIR);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return join(dir, name);
  }

  /** Holds one volume's lock: snapshots, rollbacks, receives and removal of that volume are serialised. */
  withVolumeLock<T>(name: string, fn: () => T): T {
    this.ensureDir();
    return withLock(this.volumeLockPath(name), fn);
  }

  /** The record, or undefined (an invalid name is simply no volume). */
  find(name: string): VolumeRecord | undefined {
    return this.read(name);
  }

  /** The record, or undefined; the mount point is always the current store's. */
  private read(name: string): VolumeRecord | undefined {
    if (!VOLUME_NAME.test(name) || name === LOCK_NAME || name.length > MAX_NAME) return undefined;
    let text: string | undefined;
    try {
      text = readIfExists(join(this.dir, name, 'volume.json'));
    } catch (e) {
      if (errnoCode(e) === 'ENOTDIR') return undefined;
      throw e;
    }
    if (text === undefined) return undefined;
    let rec: VolumeRecord;
    try {
      rec = JSON.parse(text) as VolumeRecord;
    } catch {
      throw new HutchError('VOLUME_CORRUPT', `the record of volume ${name} is unreadable`, {
        hint: `Remove it with: hutch volume rm -f ${name}`,
      });
    }
    return { ...rec, name, mountpoint: this.mountpoint(name) };
  }

  exists(name: string): boolean {
    return this.read(name) !== undefined;
  }

  get(name: string): VolumeRecord {
    const v = this.read(name);
    if (!v) throw noSuchVolume(name);
    return v;
  }

  /** Every volume, by name; `.tmp-*` leftovers and unreadable records are skipped. */
  list(): VolumeRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw e;
    }
    const out: VolumeRecord[] = [];
    for (const n of names.sort()) {
      try {
        const v = this.read(n);
        if (v) out.push(v);
      } catch (e) {
        log.warn(`skipping volume ${n}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /**
   * Makes a volume, or answers the existing one of that name when the
   * options are the same (docker answers it too); other options are an error.
   */
  create(opts: CreateVolumeOptions = {}): VolumeRecord {
    const options = opts.options ?? {};
    const kind = parseVolumeOptions(options);
    const name = opts.name ?? randomHex(32);
    validateVolumeName(name);
    return this.locked(() => {
      const existing = this.read(name);
      if (existing) {
        if (sameOptions(existing.options, options)) return existing;
        throw new HutchError('VOLUME_EXISTS', `volume ${name} already exists with other options`, {
          hint: `Give another name, or remove it first: hutch volume rm ${name}`,
        });
      }
      if (lstatIfExists(join(this.dir, name))) {
        throw new HutchError('VOLUME_EXISTS', `${join(this.dir, name)} exists but is not a volume`, {
          hint: 'Something other than hutch put it there: move it away, or give another name.',
        });
      }
      const record: VolumeRecord = {
        name,
        driver: 'local',
        created: new Date().toISOString(),
        labels: { ...(opts.labels ?? {}) },
        options: { ...options },
        mountpoint: this.mountpoint(name),
      };
      if (kind.kind === 'plain') {
        if (kind.uid !== undefined) record.uid = kind.uid;
        if (kind.gid !== undefined) record.gid = kind.gid;
      }
      const z = kind.kind === 'plain' ? this.zfs() : undefined;
      if (z !== undefined) return this.createDataset(z, record);
      const tmp = mkdtempSync(join(this.dir, TEMP_MARK));
      try {
        const data = join(tmp, '_data');
        makeDataDir(data);
        chmodSync(data, 0o755); // not the umask's idea of it
        if (record.uid !== undefined || record.gid !== undefined) chownData(data, record);
        writeJsonAtomic(join(tmp, 'volume.json'), record);
        renameSync(tmp, join(this.dir, name));
      } catch (e) {
        rmSync(tmp, { recursive: true, force: true });
        throw e;
      }
      return record;
    });
  }

  /**
   * A volume whose content is a dataset, under the store's lock: the record
   * is staged, the dataset made unmounted under the volume's name, the
   * record renamed into place, then the dataset mounted at `_data`. Killed
   * before the record's rename, a dataset without record is left, which
   * the sweep (and a create of the same name) destroys; killed after it,
   * the volume exists and ensureContent mounts it at its next use.
   */
  private createDataset(z: ZfsVolumes, base: VolumeRecord): VolumeRecord {
    const record: VolumeRecord = { ...base, zfs: true };
    this.dropOrphanDataset(z, record.name);
    const tmp = mkdtempSync(join(this.dir, TEMP_MARK));
    try {
      mkdirSync(join(tmp, '_data'), { mode: 0o755 });
      writeJsonAtomic(join(tmp, 'volume.json'), record);
      z.create(record.name);
      renameSync(tmp, join(this.dir, record.name));
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      try {
        z.destroy(record.name);
      } catch (cleanup) {
        log.debug(`leaving the dataset of ${record.name} for the sweep: ${(cleanup as Error).message}`);
      }
      throw e;
    }
    z.place(record.name, record.mountpoint);
    chmodSync(record.mountpoint, 0o755); // not the umask's idea of it
    if (record.uid !== undefined || record.gid !== undefined) chownData(record.mountpoint, record);
    return record;
  }

  /**
   * A dataset with a volume's name but no record is what a killed create,
   * clone or remove left (each makes or drops such a dataset under the
   * store's lock, which the caller holds): it holds nothing of any volume.
   */
  dropOrphanDataset(z: ZfsVolumes, name: string): void {
    if (this.read(name) === undefined && z.exists(name)) z.destroy(name);
  }

  /**
   * Removes a volume and its content. Whether containers use it is the
   * engine's question; `force` only makes a missing volume no error.
   * Answers whether there was one.
   */
  remove(name: string, opts: { force?: boolean } = {}): boolean {
    if (!VOLUME_NAME.test(name) || name.length > MAX_NAME || name === LOCK_NAME) {
      if (opts.force) return false;
      throw noSuchVolume(name);
    }
    // A snapshot or receive in progress finishes first.
    return this.withVolumeLock(name, () => this.removeLocked(name, opts));
  }

  private removeLocked(name: string, opts: { force?: boolean }): boolean {
    return this.locked(() => {
      const v = this.read(name);
      if (!v) {
        if (opts.force) return false;
        throw noSuchVolume(name);
      }
      const dir = join(this.dir, name);
      // A dataset's content is unmounted first (a killed remove leaves the volume whole,
      // mounted again at its next use); its destroy comes after the record is gone.
      const z = this.zfsOf(v);
      if (z !== undefined && z.exists(name)) z.unplace(name);
      refuseIfMounted(dir, name);
      const doomed = join(this.dir, `${TEMP_MARK}rm-${process.pid}-${randomHex(4)}`);
      // Gone from listings at once; a crash while deleting leaves a .tmp-* for cleanupTemp.
      renameSync(dir, doomed);
      removeTree(doomed); // its snapshots too, read-only subvolumes included
      z?.destroy(name); // with its snapshots; a dataset left by a crash is an orphan the sweep takes
      return true;
    });
  }

  /** Removes what killed commands left: `.tmp-*` beside the volumes and inside them. */
  cleanupTemp(): string[] {
    return this.locked(() => {
      const removed: string[] = [];
      const sweep = (dir: string): void => {
        let names: string[];
        try {
          names = readdirSync(dir);
        } catch {
          return;
        }
        for (const n of names) {
          if (n.startsWith(TEMP_MARK)) {
            removeTree(join(dir, n));
            removed.push(join(dir, n));
          } else if (dir === this.dir && VOLUME_NAME.test(n) && n !== LOCK_NAME) {
            sweep(join(dir, n));
            sweep(join(dir, n, 'snapshots'));
          }
        }
      };
      sweep(this.dir);
      return removed;
    });
  }

  /** Bytes of content, as docker counts them: every non-directory once per inode. */
  diskUsage(name: string): number {
    const v = this.get(name);
    const kind = parseVolumeOptions(v.options);
    if (kind.kind !== 'plain') return 0; // a tmpfs holds nothing here; a bind device is not ours
    const seen = new Set<string>();
    let total = 0;
    const walk = (dir: string): void => {
      for (const n of readdirSync(dir)) {
        const p = join(dir, n);
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p);
        else if (!seen.has(`${st.dev}:${st.ino}`)) {
          seen.add(`${st.dev}:${st.ino}`);
          total += st.size;
        }
      }
    };
    walk(v.mountpoint);
    return total;
  }

  /**
   * Called at every mount of the volume into a container, before the
   * container starts. The first time, if the volume is empty, the image's
   * content at the mount point (`source`, a host path already resolved
   * inside the container's root; undefined when the image has nothing there
   * or the mount says nocopy) is copied in, as docker does. Later mounts
   * copy nothing, whatever the volume holds. Answers whether it copied.
   *
   * A plain volume gets the copy atomically: it is built beside `_data` and
   * renamed over the empty `_data`. A bind volume's host directory gets it
   * in place. A tmpfs volume is fresh at each start and gets nothing.
   */
  copyUpIfFirstUse(name: string, source: string | undefined): boolean {
    return this.withVolumeLock(name, () => this.copyUpLocked(name, source));
  }

  /**
   * Copy-up into a dataset volume: in place, between a mark on the dataset
   * and the record's `copiedUp`, so a copy killed half way is emptied and
   * made again by the next one (see ZfsVolumes.markCopying).
   */
  private copyUpDataset(z: ZfsVolumes, v: VolumeRecord, source: string | undefined): boolean {
    const src = source === undefined ? undefined : lstatIfExists(source);
    let copied = false;
    if (z.copying(v.name)) emptyDir(v.mountpoint);
    if (source !== undefined && src?.isDirectory() && readdirSync(v.mountpoint).length === 0) {
      z.markCopying(v.name, true);
      copyChildren(source, v.mountpoint);
      const given = v.uid !== undefined || v.gid !== undefined;
      if (!given) {
        chownSync(v.mountpoint, src.uid, src.gid);
        chmodSync(v.mountpoint, src.mode & 0o7777);
      }
      utimesSync(v.mountpoint, src.atimeMs / 1000, src.mtimeMs / 1000);
      copied = true;
    }
    writeJsonAtomic(join(this.dir, v.name, 'volume.json'), { ...v, copiedUp: true });
    if (copied) z.markCopying(v.name, false);
    return copied;
  }

  private copyUpLocked(name: string, source: string | undefined): boolean {
    return this.locked(() => {
      const v = this.get(name);
      this.ensureContent(v);
      if (v.copiedUp) return false;
      const kind = parseKindQuietly(v);
      if (kind.kind === 'tmpfs') return false;
      const z = this.zfsOf(v);
      if (z !== undefined) return this.copyUpDataset(z, v, source);
      let copied = false;
      const src = source === undefined ? undefined : lstatIfExists(source);
      // The source itself must be a real directory: a link there is not followed.
      if (source !== undefined && src?.isDirectory()) {
        const target = kind.kind === 'bind' ? kind.device : v.mountpoint;
        if (readdirSync(target).length === 0) {
          if (kind.kind === 'bind') copyChildren(source, target);
          else copyIntoPlain(v, source, src);
          copied = true;
        }
      }
      writeJsonAtomic(join(this.dir, name, 'volume.json'), { ...v, copiedUp: true });
      return copied;
    });
  }
}

function emptyDir(dir: string): void {
  for (const n of readdirSync(dir)) rmSync(join(dir, n), { recursive: true, force: true });
}

function chownData(data: string, v: { uid?: number; gid?: number }): void {
  try {
    chownSync(data, v.uid ?? -1, v.gid ?? -1);
  } catch (e) {
    if (errnoCode(e) !== 'EINVAL' && errnoCode(e) !== 'EPERM') throw e;
    const ids = [v.uid === undefined ? '' : `uid=${v.uid}`, v.gid === undefined ? '' : `gid=${v.gid}`];
    throw new HutchError('BAD_VOLUME_OPTION', `${ids.filter(Boolean).join(',')}: no such id here`, {
      hint: 'Rootless, only ids up to the size of your sub-id range exist: see hutch info for the mapped ranges.',
    });
  }
}

/**
 * Deleting a directory with something mounted on it would delete the
 * mounted tree: a different device below the volume means a mount, unless
 * `_data` is a btrfs subvolume (which has a device number of its own) that
 * the mount table does not list.
 */
function refuseIfMounted(dir: string, name: string): void {
  const path = join(dir, '_data');
  const data = lstatIfExists(path);
  if (!data || data.dev === lstatSync(dir).dev) return;
  if (isSubvolume(path) && !isMountPoint(path)) return;
  throw new HutchError('VOLUME_BUSY', `volume ${name} has something mounted on its content`, {
    hint: `Unmount ${path} first (hutch unshare umount ...).`,
  });
}

function isMountPoint(path: string): boolean {
  try {
    return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).some((m) => m.mountPoint === path);
  } catch {
    return true; // unknown: the careful answer
  }
}

/**
 * The copy goes into a new directory (a subvolume where `_data` is one) that
 * takes the empty `_data`'s place in one exchange.
 */
function copyIntoPlain(v: VolumeRecord, source: string, src: Stats): void {
  const dir = join(v.mountpoint, '..');
  const tmp = join(dir, `${TEMP_MARK}copyup-${process.pid}-${randomHex(4)}`);
  makeDataDir(tmp);
  try {
    copyChildren(source, tmp);
    // Docker gives the volume's top the image directory's owner and mode, unless -o uid/gid chose one.
    const given = v.uid !== undefined || v.gid !== undefined;
    const top = given ? lstatSync(v.mountpoint) : src;
    chownSync(tmp, top.uid, top.gid);
    chmodSync(tmp, top.mode & 0o7777);
    utimesSync(tmp, src.atimeMs / 1000, src.mtimeMs / 1000);
    exchange(tmp, v.mountpoint);
  } finally {
    removeTree(tmp); // the empty `_data` after the exchange, the partial copy after a failure
  }
}

const S_IFMT = 0o170000;

/** glibc's dev_t layout; arithmetic, not bit operators, since a dev_t may exceed 32 bits. */
function major(dev: number): number {
  return (Math.floor(dev / 0x100) % 0x1000) + Math.floor(dev / 2 ** 44) * 0x1000;
}

function minor(dev: number): number {
  return (dev % 0x100) + (Math.floor(dev / 0x100000) % 0x1000000) * 0x100;
}

/**
 * Copies the entries of `from` into the existing directory `to`: modes,
 * owners and times kept, symbolic links copied as links (never followed),
 * hard links as separate copies, sockets skipped.
 */
export function copyChildren(from: string, to: string): void {
  for (const n of readdirSync(from)) {
    const s = join(from, n);
    const d = join(to, n);
    const st = lstatSync(s);
    if (st.isDirectory()) {
      mkdirSync(d, 0o700);
      copyChildren(s, d);
    } else if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(s), d);
      lchownSync(d, st.uid, st.gid);
      lutimesSync(d, st.atimeMs / 1000, st.mtimeMs / 1000);
      continue;
    } else if (st.isFile()) {
      copyFileSync(s, d, constants.COPYFILE_EXCL);
    } else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
      try {
        sys().mknod(d, st.mode & (S_IFMT | 0o7777), major(st.rdev), minor(st.rdev));
      } catch (e) {
        // Rootless, device nodes cannot be made: the container sees none there, as with any skipped node.
        log.debug(`volume copy-up: skipped ${s}: ${(e as Error).message}`);
        continue;
      }
    } else {
      continue; // a socket means nothing without its process
    }
    // Owner before mode: chown clears set-id bits.
    lchownSync(d, st.uid, st.gid);
    chmodSync(d, st.mode & 0o7777);
    utimesSync(d, st.atimeMs / 1000, st.mtimeMs / 1000);
  }
}
