/**
 * The tar format, write side: ustar headers, with PAX extended headers for
 * what ustar cannot hold (long or non-ASCII names, sizes from 8 GiB, ids
 * past 2^21, times outside 1970..2242, extended attributes). hutch writes
 * tar for `commit` (a layer), `export` and `cp`; ../extract reads it back.
 *
 * Names are "byte strings" (ByteName): Linux file names are bytes, not text,
 * so a name read from disk is held one char per byte (latin1) and written
 * back byte for byte; a name that is not UTF-8 still round-trips.
 *
 * TreePacker turns file system objects into entries: it reads bodies in
 * chunks (never a whole file in memory), notices hard links by device and
 * inode, and reads extended attributes except overlayfs's own.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
} from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { sys } from '../../sys/native.ts';
import { HutchError, errnoCode } from '../../util/errors.ts';
import {
  BLOCK,
  MAX_META_BODY,
  T,
  invalid,
  isZeroBlock,
  libarchiveXattr,
  longName,
  parseHeader,
  parsePax,
  paxNumber,
  paxText,
  unsupported,
} from '../extract/tar.ts';

/** A file name or path as raw bytes, one char per byte (latin1). */
export type ByteName = string;

/** Text (a path the user typed, UTF-8) as a ByteName. */
export function toBytes(text: string): ByteName {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** A ByteName as text: exact for UTF-8 names, U+FFFD for bytes that are not. */
export function fromBytes(name: ByteName): string {
  return Buffer.from(name, 'latin1').toString('utf8');
}

/** What fs calls take for a ByteName: a Buffer, so no byte is re-encoded. */
export function fsPath(name: ByteName): Buffer {
  return Buffer.from(name, 'latin1');
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  /** The member's path, relative, without a leading `/` (a directory's trailing `/` is added here). */
  name: ByteName;
  type: EntryType;
  /** Permission bits with setuid, setgid and sticky (no file type bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Body bytes (regular files only; 0 for the rest). */
  size: number;
  /** Seconds since the epoch (whole seconds are written). */
  mtime: number;
  /** Symbolic link target, or the member a hard link names. */
  linkname?: ByteName;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const TYPEFLAG: Record<EntryType, string> = {
  file: T.FILE,
  hardlink: T.HARDLINK,
  symlink: T.SYMLINK,
  char: T.CHAR,
  block: T.BLOCK,
  dir: T.DIR,
  fifo: T.FIFO,
};

/** Largest values of the ustar numeric fields: 7 and 11 octal digits. */
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);

const ZEROS: Buffer = Buffer.alloc(BLOCK);

/** Zero bytes that fill a body of `size` bytes up to the next block. */
export function padding(size: number): Buffer {
  const r = size % BLOCK;
  return r === 0 ? ZEROS.subarray(0, 0) : ZEROS.subarray(0, BLOCK - r);
}

function octal(b: Buffer, off: number, len: number, value: number): void {
  b.write(`${value.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');
}

/** GNU base-256: for the device numbers, which PAX has no keyword for. */
function base256(b: Buffer, off: number, len: number, value: number): void {
  let v = value;
  for (let i = off + len - 1; i > off; i--) {
    b[i] = v % 256;
    v = Math.floor(v / 256);
  }
  b[off] = 0x80;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/**
 * Splits a name over ustar's prefix (155 bytes) and name (100 bytes) fields
 * at a `/`, or answers undefined when it cannot be split so.
 */
function ustarName(name: ByteName): [string, string] | undefined {
  if (name.length <= 100) return ['', name];
  if (name.length > 256) return undefined;
  // The prefix must end at a slash that leaves at most 100 bytes after it.
  for (let i = name.length - 101; i < name.length; i++) {
    if (i < 1 || name[i] !== '/') continue;
    if (i > 155) return undefined;
    const rest = name.slice(i + 1);
    if (rest.length === 0 || rest.length > 100) continue;
    return [name.slice(0, i), rest];
  }
  return undefined;
}

/** One PAX record: `LEN KEY=VALUE\n`, where LEN counts the whole record, its own digits included. */
function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(key) + value.length + 3; // ' ', '=', '\n'
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'utf8'), value, Buffer.from('\n')]);
}

function checksum(b: Buffer): void {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

interface UstarFields {
  name: ByteName;
  prefix: ByteName;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string;
  linkname: ByteName;
  devmajor: number;
  devminor: number;
}

function ustarBlock(f: UstarFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, 'latin1');
  octal(b, 100, 8, f.mode);
  octal(b, 108, 8, f.uid);
  octal(b, 116, 8, f.gid);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, f.mtime);
  b.write(f.type, 156, 1, 'latin1');
  b.write(f.linkname, 157, 100, 'latin1');
  b.write('ustar\x0000', 257, 8, 'latin1');
  if (f.devmajor > MAX_OCTAL_7) base256(b, 329, 8, f.devmajor);
  else octal(b, 329, 8, f.devmajor);
  if (f.devminor > MAX_OCTAL_7) base256(b, 337, 8, f.devminor);
  else octal(b, 337, 8, f.devminor);
  b.write(f.prefix, 345, 155, 'latin1');
  checksum(b);
  return b;
}

/**
 * The header blocks of one entry: a PAX extended header when needed, then
 * the ustar header. The body (for files) and its padding follow.
 */
export function encodeHeader(e: TarEntry): Buffer {
  const records: Buffer[] = [];
  const name = e.type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name;
  let split = isAscii(name) ? ustarName(name) : undefined;
  if (split === undefined) {
    records.push(paxRecord('path', fsPath(name)));
    // What a reader without PAX sees: the name cut to the field, which is harmless.
    split = ['', name.slice(0, 100)];
  }
  let linkname = e.linkname ?? '';
  if (linkname.length > 100 || !isAscii(linkname)) {
    records.push(paxRecord('linkpath', fsPath(linkname)));
    linkname = linkname.slice(0, 100);
  }
  const size = e.type === 'file' ? e.size : 0;
  const numbers: [string, number, number][] = [
    ['uid', e.uid, MAX_OCTAL_7],
    ['gid', e.gid, MAX_OCTAL_7],
    ['size', size, MAX_OCTAL_11],
  ];
  const fields = { uid: e.uid, gid: e.gid, size };
  for (const [key, value, max] of numbers) {
    if (value > max) {
      records.push(paxRecord(key, Buffer.from(String(value))));
      fields[key as keyof typeof fields] = 0;
    }
  }
  let mtime = Math.floor(e.mtime);
  if (!(mtime >= 0 && mtime <= MAX_OCTAL_11)) {
    records.push(paxRecord('mtime', Buffer.from(String(mtime))));
    mtime = 0;
  }
  if (e.xattrs) {
    for (const [key, value] of e.xattrs) records.push(paxRecord(`SCHILY.xattr.${key}`, value));
  }
  const ustar = ustarBlock({
    name: split[1],
    prefix: split[0],
    mode: e.mode & 0o7777,
    uid: fields.uid,
    gid: fields.gid,
    size: fields.size,
    mtime,
    type: TYPEFLAG[e.type],
    linkname,
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
  });
  if (records.length === 0) return ustar;
  const body = Buffer.concat(records);
  // The extended header's own name: informative only (readers apply it to the next entry).
  const base = name.replace(/\/$/, '').split('/').pop() ?? '';
  const paxName = `PaxHeaders.0/${base.replace(/[^\x20-\x7e]/g, '_')}`.slice(0, 100);
  const pax = ustarBlock({
    name: paxName,
    prefix: '',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime,
    type: T.PAX,
    linkname: '',
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([pax, body, padding(body.length), ustar]);
}

// ---- file system objects -------------------------------------------------------------------------

/** The error for a name the layer extractor would take as a whiteout. */
export function whiteoutName(name: ByteName): HutchError {
  return new HutchError(
    'WHITEOUT_NAME',
    `cannot archive ${JSON.stringify(fromBytes(name))}: names starting with ".wh." mark deletions in image layers`,
    { hint: 'Rename the file: a layer (or a copy into a container) cannot carry it under that name.' },
  );
}

export interface PackOptions {
  /** Written as every entry's owner instead of the file's own (docker cp without -a). */
  owner?: { uid: number; gid: number } | undefined;
  /** Translates each file's own owner (a container with its own ID mapping); `owner` wins. */
  mapOwner?: ((uid: number, gid: number) => { uid: number; gid: number }) | undefined;
  /** Refuse `.wh.*` names (for tar that the layer extractor reads: commit, cp). */
  refuseWhiteoutNames?: boolean;
  /**
   * A real directory every file read must lie in (a container's root, which
   * its processes may change under us): each opened file's path is checked.
   */
  confine?: string | undefined;
  /** Called for what tar cannot hold (sockets), with the name; the entry is left out. */
  onSkip?: (name: ByteName, why: string) => void;
}

/** Read in chunks of this size: bodies stream, never held whole. */
const CHUNK = 1 << 20;

/** Attributes that belong to the overlay mount itself (kernel overlay's, fuse-overlayfs's), never to the files in it. */
const OVERLAY_XATTR = /^((trusted|user)\.overlay|user\.fuseoverlayfs)\./;

function isWhiteoutBase(name: ByteName): boolean {
  const slash = name.lastIndexOf('/');
  return name.startsWith('.wh.', slash + 1);
}

function modeType(st: BigIntStats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined; // a socket (or anything else tar cannot hold)
}

/** Linux's major/minor from a dev_t (glibc's gnu_dev_major/minor). */
function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** Extended attributes worth carrying: not overlay's, not an SELinux label of this host's policy. */
export function readXattrs(path: ByteName): Map<string, Buffer> | undefined {
  // The native binding takes text paths: a name that is not UTF-8 cannot be asked (rare; its attributes are dropped).
  const bytes = fsPath(path);
  if (!isUtf8(bytes)) return undefined;
  const text = bytes.toString('utf8');
  let names: string[];
  try {
    names = sys().llistxattr(text);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOENT') return undefined;
    throw e;
  }
  let out: Map<string, Buffer> | undefined;
  for (const n of names.sort()) {
    if (OVERLAY_XATTR.test(n) || n === 'security.selinux' || n.startsWith('system.')) continue;
    let v: Buffer | null;
    try {
      v = sys().lgetxattr(text, n);
    } catch (e) {
      const code = errnoCode(e);
      if (
        code === 'ENODATA' ||
        code === 'ENOTSUP' ||
        code === 'EOPNOTSUPP' ||
        code === 'EPERM' ||
        code === 'EACCES'
      )
        continue;
      throw e;
    }
    if (v !== null) (out ??= new Map()).set(n, v);
  }
  return out;
}

function escaped(path: ByteName): HutchError {
  return new HutchError(
    'PATH_ESCAPED',
    `${fromBytes(path)} led outside the container's root filesystem while it was being read`,
    {
      hint: 'Something in the container is changing the files being copied: stop or pause it and try again.',
    },
  );
}

export class TreePacker {
  private readonly opts: PackOptions;
  /** dev:ino of files written with more than one link -> the member name they were written under. */
  private readonly links = new Map<string, ByteName>();
  /** Set once an entry has been written (an archive of nothing is a layer of nothing). */
  entries = 0;

  constructor(opts: PackOptions = {}) {
    this.opts = opts;
  }

  private check(name: ByteName): void {
    if (this.opts.refuseWhiteoutNames && isWhiteoutBase(name)) throw whiteoutName(name);
  }

  /** A header of our own making (whiteouts, markers). */
  *raw(e: TarEntry): Generator<Buffer> {
    this.entries++;
    yield encodeHeader(e);
  }

  /** An empty regular file: a whiteout `.wh.NAME` or the opaque marker `.wh..wh..opq`. */
  *marker(name: ByteName): Generator<Buffer> {
    yield* this.raw({ name, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 0 });
  }

  /**
   * The file system object at `path` as the member `name` (its body too);
   * `st` when the caller has lstat'ed it already. Sockets are skipped.
   */
  *entry(path: ByteName, name: ByteName, st?: BigIntStats): Generator<Buffer> {
    this.check(name);
    const s = st ?? lstatSync(fsPath(path), { bigint: true });
    const type = modeType(s);
    if (type === undefined) {
      this.opts.onSkip?.(name, 'a socket cannot be archived');
      return;
    }
    const owner = this.opts.owner ?? this.opts.mapOwner?.(Number(s.uid), Number(s.gid));
    const e: TarEntry = {
      name,
      type,
      mode: Number(s.mode & 0o7777n),
      uid: owner ? owner.uid : Number(s.uid),
      gid: owner ? owner.gid : Number(s.gid),
      size: 0,
      mtime: Number(s.mtimeMs / 1000n),
    };
    if (type !== 'symlink') {
      const x = readXattrs(path);
      if (x) e.xattrs = x;
    }
    if (type === 'symlink') e.linkname = readlinkSync(fsPath(path), { encoding: 'latin1' });
    else if (type === 'char' || type === 'block') {
      e.devmajor = major(s.rdev);
      e.devminor = minor(s.rdev);
    } else if (type === 'file' && s.nlink > 1n) {
      const key = `${s.dev}:${s.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        e.type = 'hardlink';
        e.linkname = first;
      } else this.links.set(key, name);
    }
    if (e.type !== 'file') {
      yield* this.raw(e);
      return;
    }
    yield* this.file(path, e);
  }

  /** A regular file: header, then its bytes as they are read, exactly the size the header says. */
  private *file(path: ByteName, e: TarEntry): Generator<Buffer> {
    let fd: number;
    try {
      fd = openSync(fsPath(path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      if (errnoCode(err) === 'ELOOP' && this.opts.confine !== undefined) throw escaped(path);
      throw err;
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      if (!st.isFile()) throw escaped(path);
      this.confined(fd, path);
      e.size = Number(st.size);
      yield* this.raw(e);
      let left = e.size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, left));
        let got = 0;
        while (got < buf.length) {
          const n = readSync(fd, buf, got, buf.length - got, null);
          if (n === 0) break;
          got += n;
        }
        if (got === 0) break;
        left -= got;
        yield got === buf.length ? buf : buf.subarray(0, got);
      }
      // The file shrank while it was read (a running container): zeros keep the archive whole.
      while (left > 0) {
        const n = Math.min(CHUNK, left);
        yield Buffer.alloc(n);
        left -= n;
      }
      const pad = padding(e.size);
      if (pad.length > 0) yield pad;
    } finally {
      closeSync(fd);
    }
  }

  private confined(fd: number, path: ByteName): void {
    const root = this.opts.confine;
    if (root === undefined) return;
    let real: string;
    try {
      real = readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'latin1' });
    } catch {
      return; // no /proc: the O_NOFOLLOW open is the only guard
    }
    if (real !== root && !real.startsWith(root === '/' ? '/' : `${root}/`)) throw escaped(path);
  }

  /**
   * A whole tree: `path` as `name` (when `name` is not undefined) and
   * everything below it, parents before children, names sorted.
   * `name` undefined writes the children only, named from ''.
   */
  *tree(path: ByteName, name: ByteName | undefined, st?: BigIntStats): Generator<Buffer> {
    const s = st ?? lstatSync(fsPath(path), { bigint: true });
    if (name !== undefined) yield* this.entry(path, name, s);
    if (!s.isDirectory()) return;
    for (const child of this.children(path)) {
      const childPath = `${path}/${child}`;
      const childName = name === undefined || name === '' ? child : `${name}/${child}`;
      yield* this.tree(childPath, childName);
    }
  }

  /** A directory's entries, sorted (archives come out the same for the same tree). */
  children(path: ByteName): ByteName[] {
    if (this.opts.confine !== undefined) {
      // A directory swapped for a symbolic link since it was listed would lead out of the root.
      const st = lstatSync(fsPath(path), { bigint: true });
      if (!st.isDirectory()) throw escaped(path);
    }
    return readdirSync(fsPath(path), { encoding: 'latin1' }).sort();
  }

  *end(): Generator<Buffer> {
    yield END_OF_ARCHIVE;
  }
}

// ---- rewriting a tar stream (docker cp's `-`) ------------------------------------------------------

export interface RebaseOptions {
  /** Put before every member name (and hard link target), normalised: `a/b`. */
  prefix: ByteName;
  owner?: { uid: number; gid: number } | undefined;
  /** Translates each member's owner (into a container with its own ID mapping); `owner` wins. */
  mapOwner?: ((uid: number, gid: number) => { uid: number; gid: number }) | undefined;
  /** Error raised for a name that climbs above the archive's root. */
  unsafe: (name: string) => Error;
}

/** Reads exact byte counts from an async stream of chunks. */
class ChunkReader {
  private readonly it: AsyncIterator<unknown>;
  private buf: Buffer = Buffer.alloc(0);
  pos = 0;
  ended = false;

  constructor(input: AsyncIterable<unknown>) {
    this.it = input[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    const c = r.value;
    const chunk = Buffer.isBuffer(c)
      ? c
      : typeof c === 'string'
        ? Buffer.from(c, 'latin1')
        : Buffer.from(c as Uint8Array);
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return true;
  }

  /** Exactly `n` bytes, or undefined when the stream ends first. */
  async exact(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n) if (!(await this.more())) return undefined;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.pos += n;
    return out;
  }

  /** `n` bytes as they come, in pieces. */
  async *pieces(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw truncated(this.pos);
      const take = Math.min(left, this.buf.length);
      const piece = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      this.pos += take;
      left -= take;
      yield piece;
    }
  }

  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (await this.more()) this.buf = Buffer.alloc(0);
  }
}

function truncated(at: number): HutchError {
  return new HutchError(
    'TAR_TRUNCATED',
    `the tar stream ended in the middle of an entry (${at} bytes read)`,
    {
      hint: 'Give a complete, uncompressed tar archive.',
    },
  );
}

/** A member name made relative and clean; `..` above the archive's root is refused. */
function cleanName(name: string, unsafe: (n: string) => Error): string {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw unsafe(name);
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

function typeOf(flag: string, name: string, size: number): EntryType {
  switch (flag) {
    case T.FILE:
    case T.CONTIGUOUS:
      return name.endsWith('/') && size === 0 ? 'dir' : 'file';
    case T.HARDLINK:
      return 'hardlink';
    case T.SYMLINK:
      return 'symlink';
    case T.CHAR:
      return 'char';
    case T.BLOCK:
      return 'block';
    case T.DIR:
    case T.GNU_DUMPDIR:
      return 'dir';
    case T.FIFO:
      return 'fifo';
    default:
      throw unsupported(`${name} has tar entry type ${JSON.stringify(flag)}, which hutch does not copy`);
  }
}

/**
 * A user's tar stream, re-written: every name under `prefix`, owners
 * replaced when asked, `..` escapes and whiteout names refused, PAX and GNU
 * extensions folded into the entries. The output is what the layer
 * extractor reads safely into a container's root.
 */
export async function* rebaseTar(input: AsyncIterable<unknown>, opts: RebaseOptions): AsyncGenerator<Buffer> {
  const r = new ChunkReader(input);
  let pax: Map<string, Buffer> | undefined;
  let gnuName: string | undefined;
  let gnuLink: string | undefined;
  const lossy = { lossy: false };
  const under = (n: string): ByteName => {
    const clean = toBytes(cleanName(n, opts.unsafe));
    if (opts.prefix === '') return clean;
    return clean === '' ? opts.prefix : `${opts.prefix}/${clean}`;
  };
  for (;;) {
    const at = r.pos;
    const block = await r.exact(BLOCK);
    if (block === undefined) {
      if (at === 0 && pax === undefined) throw invalid('the tar stream is empty');
      break; // a stream ending at a block boundary without the end blocks: accepted, as the extractor does
    }
    if (isZeroBlock(block, 0)) break;
    const h = parseHeader(block, 0, at);
    if (
      h.type === T.PAX ||
      h.type === T.PAX_GLOBAL ||
      h.type === T.GNU_LONGNAME ||
      h.type === T.GNU_LONGLINK
    ) {
      if (h.size > MAX_META_BODY)
        throw unsupported(`an extended tar header of ${h.size} bytes at byte ${at}`);
      const body = await r.exact(h.size + padding(h.size).length);
      if (body === undefined) throw truncated(r.pos);
      const meta = body.subarray(0, h.size);
      if (h.type === T.PAX) {
        const recs = parsePax(meta, at);
        if (pax === undefined) pax = recs;
        else for (const [k, v] of recs) pax.set(k, v);
      } else if (h.type === T.GNU_LONGNAME) gnuName = longName(meta, lossy);
      else if (h.type === T.GNU_LONGLINK) gnuLink = longName(meta, lossy);
      continue;
    }
    if (h.type === T.GNU_VOLUME) {
      for await (const _ of r.pieces(h.size + padding(h.size).length)) void _;
      continue;
    }
    let name = gnuName ?? h.name;
    let linkname = gnuLink ?? h.linkname;
    let size = h.size;
    let uid = h.uid;
    let gid = h.gid;
    let mtime = h.mtime;
    let xattrs: Map<string, Buffer> | undefined;
    for (const [k, v] of pax ?? []) {
      if (v.length === 0) continue;
      if (k === 'path') name = paxText(v, lossy);
      else if (k === 'linkpath') linkname = paxText(v, lossy);
      else if (k === 'size') size = paxNumber(v, k, at, false);
      else if (k === 'uid') uid = paxNumber(v, k, at, false);
      else if (k === 'gid') gid = paxNumber(v, k, at, false);
      else if (k === 'mtime') mtime = paxNumber(v, k, at, true);
      else if (k.startsWith('SCHILY.xattr.')) (xattrs ??= new Map()).set(k.slice(13), v);
      else if (k.startsWith('LIBARCHIVE.xattr.')) {
        const [xn, xv] = libarchiveXattr(k.slice(17), v);
        (xattrs ??= new Map()).set(xn, xv);
      } else if (k.startsWith('GNU.sparse.'))
        throw unsupported(`${name} is a GNU sparse file, which hutch does not copy`);
    }
    pax = undefined;
    gnuName = undefined;
    gnuLink = undefined;
    if (h.type === T.GNU_SPARSE || h.type === 'M')
      throw unsupported(`${name}: sparse and multi-volume entries are not copied`);
    const type = typeOf(h.type, name, size);
    // As the extractor reads tar: only files (and GNU dump directories) have a body, whatever other size fields say.
    const bodySize = h.type === T.FILE || h.type === T.CONTIGUOUS || h.type === T.GNU_DUMPDIR ? size : 0;
    const clean = under(name);
    if (isWhiteoutBase(clean)) throw whiteoutName(clean);
    const owner = opts.owner ?? opts.mapOwner?.(uid, gid);
    const e: TarEntry = {
      name: clean,
      type,
      mode: h.mode,
      uid: owner ? owner.uid : uid,
      gid: owner ? owner.gid : gid,
      size: type === 'file' ? size : 0,
      mtime,
      devmajor: h.devmajor,
      devminor: h.devminor,
    };
    if (type === 'symlink') e.linkname = toBytes(linkname);
    if (type === 'hardlink') e.linkname = under(linkname);
    if (xattrs) e.xattrs = xattrs;
    yield encodeHeader(e);
    if (type === 'file') {
      yield* r.pieces(size);
      const pad = padding(size);
      if (pad.length > 0) yield pad;
      for await (const _ of r.pieces(pad.length)) void _;
    } else if (bodySize > 0) {
      for await (const _ of r.pieces(bodySize + padding(bodySize).length)) void _;
    }
  }
  yield END_OF_ARCHIVE;
  await r.drain();
}
