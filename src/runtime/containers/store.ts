/**
 * The container store: one directory per container under ROOT/containers,
 * holding its record (container.json), its OCI bundle (config.json) and the
 * files made for it (hosts, hostname, resolv.conf, its log). Names are
 * reserved by symlinks in ROOT/containers/names, under the store lock, so two
 * concurrent `create --name x` cannot both win. A container becomes visible
 * only once its directory is complete (built under a temporary name, then
 * renamed); removal renames it away first. A killed command therefore never
 * leaves a half-made or half-removed container that `ps` would show.
 *
 *   ROOT/containers/ID/container.json   the record (types.ts)
 *   ROOT/containers/ID/config.json      the OCI runtime spec (the bundle)
 *   ROOT/containers/ID/lock             taken for every state change
 *   ROOT/containers/generation          changed after every record change
 *   ROOT/containers/summaries.cache     what ps shows of every record, as of one generation
 *   RUNROOT/exits/ID                    conmon's exit file
 *   RUNROOT/s/SHORTID -> bundle         conmon's short path to the attach socket
 */
import { randomHex } from '../../util/random.ts';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { withLock } from '../../sys/lock.ts';
import { errnoCode, HutchError } from '../../util/errors.ts';
import { TEMP_MARK, writeFileAtomic } from '../../util/fs-atomic.ts';
import type { ContainerRecord } from './types.ts';
import { log } from '../../util/log.ts';

export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Records are written compact: `ps` parses every one of them on each call. */
function writeRecord(path: string, r: ContainerRecord, durable = true): void {
  writeFileAtomic(path, JSON.stringify(r), 0o600, { durable });
}

const GENERATION = 'generation';
/** Tokens are all this long, so each overwrites the last in place. */
const TOKEN_WIDTH = 40;

/**
 * Writes a token over the last one in place. Not a temporary file and a
 * rename: replacing a file by rename makes ext4 allocate and start writing
 * the new one at once (auto_da_alloc), a quarter of a millisecond or more,
 * and every container change writes two tokens. A torn or mixed token is
 * only one that no cache carries, which is all a token must be.
 */
function writeToken(path: string, token: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
    fd = openSync(path, 'w', 0o600);
  }
  try {
    writeSync(fd, token, 0);
    ftruncateSync(fd, Buffer.byteLength(token)); // a longer token of an older hutch
  } finally {
    closeSync(fd);
  }
}
const LIST_CACHE = 'summaries.cache';

interface SummaryCache {
  generation: string;
  summaries: ContainerSummary[];
}

/** What `ps` shows and filters on of a container (a record has all of it). */
export type ContainerSummary = Pick<ContainerRecord, 'id' | 'name' | 'created' | 'driver' | 'state'> & {
  config: Pick<ContainerRecord['config'], 'image' | 'imageId' | 'entrypoint' | 'cmd' | 'labels'>;
  hostConfig: Pick<ContainerRecord['hostConfig'], 'mounts' | 'networkMode' | 'restartPolicy'>;
};

function summary(r: ContainerRecord): ContainerSummary {
  const { image, imageId, entrypoint, cmd, labels } = r.config;
  const { mounts, networkMode, restartPolicy } = r.hostConfig;
  return {
    id: r.id,
    name: r.name,
    created: r.created,
    driver: r.driver,
    state: r.state,
    config: { image, imageId, entrypoint, cmd, labels },
    hostConfig: { mounts, networkMode, restartPolicy },
  };
}

export function noSuchContainer(ref: string): HutchError {
  return new HutchError('NO_SUCH_CONTAINER', `no such container: ${ref}`, {
    hint: 'See the containers with `hutch ps -a`.',
  });
}

export class ContainerStore {
  readonly dir: string;
  readonly namesDir: string;
  readonly exitsDir: string;
  readonly socketsDir: string;
  readonly runtimeRoot: string;
  readonly runroot: string;
  readonly seccompCacheDir: string;

  constructor(root: string, runroot: string) {
    this.runroot = runroot;
    this.dir = join(root, 'containers');
    this.namesDir = join(this.dir, 'names');
    this.exitsDir = join(runroot, 'exits');
    this.socketsDir = join(runroot, 's');
    this.runtimeRoot = join(runroot, 'oci');
    this.seccompCacheDir = join(runroot, 'seccomp');
    for (const d of [this.namesDir, this.exitsDir, this.socketsDir])
      mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  // Plain concatenation: the parts are normalised already, and `ps` builds
  // these for every container (path.join costs ~15 µs each, cold).
  bundle(id: string): string {
    return `${this.dir}/${id}`;
  }

  recordPath(id: string): string {
    return `${this.dir}/${id}/container.json`;
  }

  exitFile(id: string): string {
    return `${this.exitsDir}/${id}`;
  }

  logPath(id: string): string {
    return join(this.dir, id, 'ctr.log');
  }

  attachSocket(id: string): string {
    return join(this.socketsDir, id.slice(0, 12), 'attach');
  }

  /** Every container id with a complete record (temporary and removed ones are not listed). */
  ids(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw e;
    }
    return names.filter((n) => n.length === 64 && /^[0-9a-f]+$/.test(n));
  }

  read(id: string): ContainerRecord | undefined {
    let text: string;
    try {
      text = readFileSync(this.recordPath(id), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw e;
    }
    try {
      return JSON.parse(text) as ContainerRecord;
    } catch {
      throw new HutchError('STORE_CORRUPT', `${this.recordPath(id)} is not valid JSON`, {
        hint: 'Run `hutch system check --repair` to remove the damaged container.',
      });
    }
  }

  /** Every readable record; a damaged one is skipped with a warning (`system check --repair` removes it). */
  list(): ContainerRecord[] {
    const out: ContainerRecord[] = [];
    for (const id of this.ids()) {
      try {
        const r = this.read(id);
        if (r) out.push(r);
      } catch (e) {
        log.warn(`${(e as Error).message}; run \`hutch system check --repair\``);
      }
    }
    return out;
  }

  /**
   * What `ps` shows and filters on of every record, read from one file while
   * no record has changed since it was written: `ps` over hundreds of
   * containers then reads one small file instead of one record each. Each change writes a new
   * generation token after the record; the cache is written with the token
   * read before the records, so a change racing with its making leaves a
   * cache that no longer matches, never a stale one that does.
   */
  summaries(): ContainerSummary[] {
    let generation = this.generation();
    if (generation === undefined) {
      this.changed();
      generation = this.generation();
    }
    const cachePath = join(this.dir, LIST_CACHE);
    if (generation !== undefined) {
      try {
        const cached = JSON.parse(readFileSync(cachePath, 'utf8')) as SummaryCache;
        if (cached.generation === generation && Array.isArray(cached.summaries)) return cached.summaries;
      } catch {
        // No cache yet, or a damaged one: it is made anew below.
      }
    }
    const summaries = this.list().map(summary);
    if (generation !== undefined) {
      try {
        writeFileAtomic(cachePath, JSON.stringify({ generation, summaries } satisfies SummaryCache), 0o600, {
          durable: false,
        });
      } catch {
        // A cache that cannot be written (a full disk, a read-only store) only costs speed.
      }
    }
    return summaries;
  }

  private generation(): string | undefined {
    try {
      return readFileSync(join(this.dir, GENERATION), 'utf8') || undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Makes a change to the records between two new tokens: the first makes
   * any cache old before the change lands, so a command killed in between
   * leaves none that looks current; the second catches a `ps` that made its
   * cache from the records just before the change.
   */
  changing<T>(fn: () => T): T {
    this.changed();
    const result = fn();
    this.changed();
    return result;
  }

  /**
   * Whether the summary cache claims to be current but disagrees with the
   * records: only a change killed while a `ps` raced with it leaves that.
   */
  staleSummaries(): boolean {
    const generation = this.generation();
    if (generation === undefined) return false;
    let cached: SummaryCache;
    try {
      cached = JSON.parse(readFileSync(join(this.dir, LIST_CACHE), 'utf8')) as SummaryCache;
    } catch {
      return false;
    }
    if (cached.generation !== generation) return false;
    const byId = (a: ContainerSummary, b: ContainerSummary): number =>
      a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    const fresh = JSON.stringify(this.list().map(summary).sort(byId));
    const same = Array.isArray(cached.summaries) && JSON.stringify(cached.summaries.sort(byId)) === fresh;
    // A change that landed while this looked is no finding: it made the cache old itself.
    return !same && this.generation() === generation;
  }

  /**
   * Marks the records as changed, for summaries(): every change to a record
   * or to the set of containers goes through changing() (rollback and reset
   * replace the whole directory, cache and token with it).
   */
  changed(): void {
    const token = `${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}`
      .padEnd(TOKEN_WIDTH, '.')
      .slice(0, TOKEN_WIDTH);
    try {
      writeToken(join(this.dir, GENERATION), token);
    } catch {
      // Cannot mark (a full disk): drop the cache instead, so it is not trusted.
      rmSync(join(this.dir, LIST_CACHE), { force: true });
    }
  }

  /** A container by full id, name, or unique id prefix, as docker resolves them. */
  find(ref: string): ContainerRecord | undefined {
    if (/^[0-9a-f]{64}$/.test(ref)) {
      const r = this.read(ref);
      if (r) return r;
    }
    const byName = this.idForName(ref.replace(/^\//, ''));
    if (byName) {
      const r = this.read(byName);
      if (r) return r;
    }
    if (/^[0-9a-f]+$/.test(ref)) {
      const matches = this.ids().filter((id) => id.startsWith(ref));
      if (matches.length > 1) {
        throw new HutchError('AMBIGUOUS_CONTAINER', `"${ref}" matches ${matches.length} containers`, {
          hint: 'Give more characters of the ID, or the name.',
        });
      }
      if (matches.length === 1) return this.read(matches[0]!);
    }
    return undefined;
  }

  get(ref: string): ContainerRecord {
    const r = this.find(ref);
    if (!r) throw noSuchContainer(ref);
    return r;
  }

  private idForName(name: string): string | undefined {
    if (!NAME_PATTERN.test(name)) return undefined;
    try {
      return readlinkSync(join(this.namesDir, name));
    } catch {
      return undefined;
    }
  }

  newId(): string {
    for (;;) {
      const id = randomHex(32);
      // docker's rule: a short ID that reads as a number would be mistaken for one.
      if (!/^[0-9]+$/.test(id.slice(0, 12)) && !existsSync(this.bundle(id))) return id;
    }
  }

  /**
   * Makes the container visible: reserves its name and moves the bundle
   * `prepare` filled into place. Under the store lock, so names stay unique.
   */
  add(record: ContainerRecord, prepare: (bundle: string) => void): void {
    const tmp = join(this.dir, `${TEMP_MARK}${record.id}`);
    mkdirSync(tmp, { recursive: true, mode: 0o700 });
    try {
      prepare(tmp);
      writeRecord(join(tmp, 'container.json'), record);
      withLock(join(this.dir, 'containers.lock'), () => {
        this.reserveName(record.name, record.id);
        this.changing(() => renameSync(tmp, this.bundle(record.id)));
      });
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  private reserveName(name: string, id: string): void {
    const link = join(this.namesDir, name);
    try {
      symlinkSync(id, link);
      return;
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    const holder = readlinkSync(link);
    // A name left behind by a killed create or rm names no container: reuse it.
    if (existsSync(this.recordPath(holder))) {
      throw new HutchError(
        'NAME_IN_USE',
        `the container name "/${name}" is already in use by container "${holder}"`,
        { hint: 'Remove (or rename) that container to be able to reuse that name.' },
      );
    }
    unlinkSync(link);
    symlinkSync(id, link);
  }

  /**
   * The new name is reserved first, then the record changed under the
   * container's lock, then the old name let go: the store lock is never held
   * while waiting for a container's (remove takes them the other way round).
   */
  rename(id: string, newName: string): void {
    withLock(join(this.dir, 'containers.lock'), () => this.reserveName(newName, id));
    let oldName: string | undefined;
    try {
      this.update(id, (r) => {
        oldName = r.name;
        r.name = newName;
      });
    } catch (e) {
      withLock(join(this.dir, 'containers.lock'), () => {
        if (this.idForName(newName) === id) rmSync(join(this.namesDir, newName), { force: true });
      });
      throw e;
    }
    withLock(join(this.dir, 'containers.lock'), () => {
      if (oldName !== undefined && this.idForName(oldName) === id)
        rmSync(join(this.namesDir, oldName), { force: true });
    });
  }

  /** Read-modify-write of one container's record under its lock; returns the new record. */
  update(id: string, fn: (r: ContainerRecord) => void): ContainerRecord {
    return withLock(join(this.bundle(id), 'lock'), () => {
      const r = this.read(id);
      if (!r) throw noSuchContainer(id);
      fn(r);
      this.changing(() => writeRecord(this.recordPath(id), r));
      return r;
    });
  }

  /** Writes a record; the caller holds the container's lock (see lockPath). */
  write(r: ContainerRecord): void {
    // State changes skip the fsync: a record is durable from its creation, and
    // its state is checked against conmon and the exit file on every read,
    // so an update lost with a power cut is reconciled like any other.
    this.changing(() => writeRecord(this.recordPath(r.id), r, false));
  }

  lockPath(id: string): string {
    return join(this.bundle(id), 'lock');
  }

  /** Runs fn under the container's lock with a fresh record, without writing it. */
  locked<T>(id: string, fn: (r: ContainerRecord) => T): T {
    return withLock(join(this.bundle(id), 'lock'), () => {
      const r = this.read(id);
      if (!r) throw noSuchContainer(id);
      return fn(r);
    });
  }

  /** Removes the record, bundle, name and exit file; the caller has stopped it and released its root. */
  remove(id: string, name: string): void {
    const gone = join(this.dir, `${TEMP_MARK}rm-${id}`);
    withLock(join(this.dir, 'containers.lock'), () => {
      try {
        this.changing(() => renameSync(this.bundle(id), gone));
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
      }
      if (this.idForName(name) === id) rmSync(join(this.namesDir, name), { force: true });
    });
    rmSync(gone, { recursive: true, force: true });
    rmSync(this.exitFile(id), { force: true });
    rmSync(join(this.socketsDir, id.slice(0, 12)), { force: true });
  }

  /** Leftovers of killed creates and removes (for `system check`). */
  leftovers(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((n) => n.startsWith(TEMP_MARK))
        .map((n) => join(this.dir, n));
    } catch {
      return [];
    }
  }
}
