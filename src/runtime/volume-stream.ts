/**
 * hutch's volume replication stream, read and written without privilege:
 *
 *   HUTCH-VOLUME-STREAM 1\n        magic and format version
 *   {header JSON}\n                 StreamHeader: volume, snapshot, base, digests, deletions
 *   payload                         "tar": the added and changed entries;
 *                                   "btrfs": what `btrfs send` wrote (rootful)
 *                                   "zfs": what `zfs send` wrote (rootful, a zfs store)
 *
 * A full stream's tar holds the whole tree; an incremental one (with a
 * base) holds what differs from the base, each with its parent directories
 * (whose times the changes alter), and the header lists the deleted paths.
 * The header carries the content digests of the snapshot and of its base
 * (./volume-digest.ts): receive checks its own base against the one the
 * stream was made from before it starts, and the tree it built against the
 * sender's before it keeps it.
 *
 * Paths are byte strings (one char per byte, ../storage/archive/tar-writer.ts),
 * in JSON as such.
 */
import { Readable } from 'node:stream';
import { chownSync, lstatSync, readdirSync, readlinkSync, rmSync, chmodSync, lutimesSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { TreePacker, fsPath, readXattrs, toBytes } from '../storage/archive/tar-writer.ts';
import type { ByteName } from '../storage/archive/tar-writer.ts';
import { applyLayer } from '../storage/extract/index.ts';
import { normalizeName } from '../storage/extract/paths.ts';
import { namespaceIdLimits } from '../sys/identity.ts';
import { HutchError } from '../util/errors.ts';

export const STREAM_MAGIC = 'HUTCH-VOLUME-STREAM 1';
/** A header (deleted paths included) larger than this is not one of ours. */
const MAX_HEADER = 256 * 1024 * 1024;

export type StreamFormat = 'tar' | 'btrfs' | 'zfs';

export interface StreamHeader {
  format: StreamFormat;
  volume: {
    name: string;
    labels: Record<string, string>;
    options: Record<string, string>;
    copiedUp: boolean;
  };
  snapshot: { name: string; id: string; created: string; digest: string };
  base?: { name: string; id: string; digest: string };
  /** The top directory's own metadata (tar has no entry for it). */
  root: { mode: number; uid: number; gid: number; mtime: number };
  /** Incremental: paths (relative, bytes) the base has and the snapshot has not, or has as another type. */
  deleted: ByteName[];
}

export function damaged(why: string): HutchError {
  return new HutchError('STREAM_INVALID', `the volume stream is not usable: ${why}`, {
    hint: 'Make it again with `hutch volume send`; nothing was changed here.',
  });
}

/**
 * Feeds a stream's payload to the filesystem's own receiver (`btrfs receive`,
 * `zfs receive`) on its stdin; a refusal is the stream's fault or the base's,
 * told with the receiver's last line.
 */
export async function feedReceiver(
  program: string,
  args: string[],
  payload: AsyncIterable<Buffer>,
  what: string,
): Promise<void> {
  const { spawn } = process.getBuiltinModule('node:child_process');
  const child = spawn(program, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  child.stdin.on('error', () => undefined); // a receive that gave up: its exit says why
  for await (const chunk of payload) {
    if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
  }
  child.stdin.end();
  if ((await exited) !== 0) throw damaged(`${what} failed: ${stderr.trim().split('\n').at(-1) ?? ''}`);
}

// ---- send ------------------------------------------------------------------------------------------

function typeBits(st: BigIntStats): bigint {
  return st.mode & 0o170000n;
}

function sameXattrs(a: ByteName, b: ByteName): boolean {
  const x = readXattrs(a);
  const y = readXattrs(b);
  if (!x || !y) return (x?.size ?? 0) === (y?.size ?? 0);
  if (x.size !== y.size) return false;
  for (const [k, v] of x) if (!y.get(k)?.equals(v)) return false;
  return true;
}

function sameContent(a: ByteName, b: ByteName): boolean {
  const { openSync, readSync, closeSync } = process.getBuiltinModule('node:fs');
  const fa = openSync(fsPath(a), 'r');
  const fb = openSync(fsPath(b), 'r');
  try {
    const ba = Buffer.allocUnsafe(1 << 20);
    const bb = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const na = readSync(fa, ba, 0, ba.length, null);
      let nb = 0;
      while (nb < na) {
        const n = readSync(fb, bb, nb, na - nb, null);
        if (n === 0) break;
        nb += n;
      }
      if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      if (na === 0) return true;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/** Whether the entry differs from the base's entry of the same path and type. */
function differs(t: ByteName, ts: BigIntStats, b: ByteName, bs: BigIntStats): boolean {
  if (ts.mode !== bs.mode || ts.uid !== bs.uid || ts.gid !== bs.gid || ts.mtimeNs !== bs.mtimeNs) return true;
  if (ts.isSymbolicLink()) {
    return (
      readlinkSync(fsPath(t), { encoding: 'latin1' }) !== readlinkSync(fsPath(b), { encoding: 'latin1' })
    );
  }
  if (!sameXattrs(t, b)) return true;
  if (ts.isCharacterDevice() || ts.isBlockDevice()) return ts.rdev !== bs.rdev;
  if (!ts.isFile()) return false;
  if (ts.size !== bs.size) return true;
  // The same inode not written since (snapshots of one subvolume share both): no need to read it.
  if (ts.ino === bs.ino && ts.ctimeNs === bs.ctimeNs) return false;
  return !sameContent(t, b);
}

export interface TreeChanges {
  /** Relative paths to write, parents before children. */
  write: ByteName[];
  deleted: ByteName[];
}

/** What turns `base` into `target` (everything in target when there is no base). */
export function treeChanges(target: string, base: string | undefined): TreeChanges {
  const write: ByteName[] = [];
  const deleted: ByteName[] = [];
  const written = new Set<ByteName>();
  const put = (rel: ByteName): void => {
    // The parents too: writing below a directory changes its time, which the entry sets back.
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (!written.has(p)) {
        written.add(p);
        write.push(p);
      }
    }
  };
  const walk = (t: ByteName, b: ByteName | undefined, rel: ByteName): void => {
    const names = readdirSync(fsPath(t), { encoding: 'latin1' }).sort();
    if (b !== undefined) {
      const here = new Set(names);
      for (const n of readdirSync(fsPath(b), { encoding: 'latin1' }).sort()) {
        if (here.has(n)) continue;
        const r = rel === '' ? n : `${rel}/${n}`;
        deleted.push(r);
        if (rel !== '') put(rel);
      }
    }
    for (const n of names) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const tp = `${t}/${n}`;
      const ts = lstatSync(fsPath(tp), { bigint: true });
      let bp: ByteName | undefined = b === undefined ? undefined : `${b}/${n}`;
      let bs: BigIntStats | undefined;
      try {
        bs = bp === undefined ? undefined : lstatSync(fsPath(bp), { bigint: true });
      } catch {
        bs = undefined;
      }
      if (bs && typeBits(bs) !== typeBits(ts)) {
        deleted.push(r);
        if (rel !== '') put(rel);
        bs = undefined;
      }
      if (!bs) bp = undefined;
      if (!bs || differs(tp, ts, bp!, bs)) put(r);
      if (ts.isDirectory()) walk(tp, bp, r);
    }
  };
  walk(toBytes(target), base === undefined ? undefined : toBytes(base), '');
  return { write, deleted };
}

/** The top directory's metadata, for the header. */
export function rootMeta(dir: string): StreamHeader['root'] {
  const st = lstatSync(dir);
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
}

export function headerBytes(header: StreamHeader): Buffer {
  return Buffer.from(`${STREAM_MAGIC}\n${JSON.stringify(header)}\n`, 'utf8');
}

/** The tar payload: each entry of `changes.write`, read from `target`. */
export function* tarPayload(target: string, changes: TreeChanges): Generator<Buffer> {
  const packer = new TreePacker({
    // The receiving side reads it with the layer extractor, to which `.wh.*` names mean deletions.
    refuseWhiteoutNames: true,
    onSkip: () => undefined, // sockets mean nothing without their process
  });
  const root = toBytes(target);
  for (const rel of changes.write) yield* packer.entry(`${root}/${rel}`, rel);
  yield* packer.end();
}

// ---- receive ---------------------------------------------------------------------------------------

/** Reads the magic and header lines off a byte stream, then hands on the rest untouched. */
export class StreamReader {
  private readonly it: AsyncIterator<unknown>;
  private buffered: Buffer = Buffer.alloc(0);

  constructor(input: AsyncIterable<unknown>) {
    this.it = input[Symbol.asyncIterator]();
  }

  private async line(what: string): Promise<string> {
    for (;;) {
      const nl = this.buffered.indexOf(0x0a);
      if (nl >= 0) {
        const text = this.buffered.subarray(0, nl).toString('utf8');
        this.buffered = this.buffered.subarray(nl + 1);
        return text;
      }
      if (this.buffered.length > MAX_HEADER) throw damaged(`its ${what} is too long`);
      const next = await this.it.next();
      if (next.done)
        throw damaged(
          this.buffered.length === 0 && what === 'first line' ? 'it is empty' : `it ends inside its ${what}`,
        );
      this.buffered = Buffer.concat([this.buffered, Buffer.from(next.value as Uint8Array)]);
    }
  }

  async header(): Promise<StreamHeader> {
    const magic = await this.line('first line');
    if (magic !== STREAM_MAGIC) {
      throw damaged(
        magic.startsWith('HUTCH-VOLUME-STREAM ')
          ? `it is format ${magic.slice(20)}, and this hutch reads format 1`
          : 'it does not start as a stream of hutch volume send',
      );
    }
    let h: StreamHeader;
    try {
      h = JSON.parse(await this.line('header')) as StreamHeader;
    } catch (e) {
      if (e instanceof HutchError) throw e;
      throw damaged('its header is not JSON');
    }
    const ok =
      (h.format === 'tar' || h.format === 'btrfs' || h.format === 'zfs') &&
      typeof h.snapshot?.name === 'string' &&
      typeof h.snapshot.id === 'string' &&
      typeof h.snapshot.digest === 'string' &&
      typeof h.volume?.name === 'string' &&
      Array.isArray(h.deleted) &&
      typeof h.root?.mode === 'number' &&
      (h.base === undefined || (typeof h.base.name === 'string' && typeof h.base.id === 'string'));
    if (!ok) throw damaged('its header lacks fields');
    return h;
  }

  /** Everything after the header. */
  async *rest(): AsyncGenerator<Buffer> {
    if (this.buffered.length > 0) yield this.buffered;
    this.buffered = Buffer.alloc(0);
    for (;;) {
      const next = await this.it.next();
      if (next.done) return;
      yield Buffer.from(next.value as Uint8Array);
    }
  }
}

/** Deletes the header's paths under `root`, refusing any that would lead outside it. */
export function applyDeletions(root: string, deleted: readonly ByteName[]): void {
  const top = toBytes(root);
  for (const raw of deleted) {
    const rel = normalizeName(raw, 'deleted path');
    if (rel === '') throw damaged("it deletes the volume's top directory");
    // Every parent must be a real directory: a symbolic link on the way would lead elsewhere.
    const parts = rel.split('/');
    let p = top;
    for (const part of parts.slice(0, -1)) {
      p = `${p}/${part}`;
      let st;
      try {
        st = lstatSync(fsPath(p));
      } catch {
        st = undefined;
      }
      if (!st?.isDirectory()) throw damaged(`it deletes ${rel}, which its base does not have`);
    }
    rmSync(fsPath(`${top}/${rel}`), { recursive: true, force: true });
  }
}

/** Applies the tar payload and the top directory's metadata to `root`. */
export async function applyTarPayload(
  root: string,
  header: StreamHeader,
  payload: AsyncIterable<Buffer>,
  rootless: boolean,
): Promise<void> {
  applyDeletions(root, header.deleted);
  const limits = namespaceIdLimits();
  try {
    await applyLayer(Readable.from(payload), root, {
      whiteouts: 'apply',
      userxattr: rootless,
      canMknod: !rootless,
      maxUid: limits.maxUid,
      maxGid: limits.maxGid,
    });
  } catch (e) {
    if (e instanceof HutchError && /^LAYER_/.test(e.code)) throw damaged(e.message);
    throw e;
  }
  const r = header.root;
  chownSync(root, r.uid, r.gid);
  chmodSync(root, r.mode);
  lutimesSync(root, r.mtime, r.mtime);
}
