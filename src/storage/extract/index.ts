/**
 * The OCI layer extractor: applies one uncompressed layer tar stream to a
 * directory, securely (nothing is ever written outside it; see ./apply.ts),
 * streaming (file bodies go to disk chunk by chunk, never held whole).
 *
 * The reading is a state machine over the stream's chunks: header blocks,
 * file bodies written as they arrive, extended headers collected, padding
 * skipped. File system work is synchronous (sync calls cost a fraction of
 * async ones per file), except the bodies of large files, which are written
 * behind on the thread pool while the next entries are applied (see
 * ./apply.ts).
 */
import type { Readable } from 'node:stream';
import { HutchError, errnoCode, isHutchError } from '../../util/errors.ts';
import type { ApplyResult } from '../types.ts';
import { Applier } from './apply.ts';
import type { Entry } from './apply.ts';
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
} from './tar.ts';
import type { Header } from './tar.ts';

export interface ExtractOptions {
  /**
   * How whiteouts are written: 'overlay' = as overlayfs whiteouts in this
   * layer's own directory (char device 0:0 named NAME; opaque directories
   * marked with the xattr `user.overlay.opaque`="y" when `userxattr` is true
   * (rootless), `trusted.overlay.opaque`="y" otherwise); 'apply' = applied to
   * a full tree (vfs): delete the named path / empty the opaque directory's
   * lower content.
   */
  whiteouts: 'overlay' | 'apply';
  /**
   * 'overlay' only: where the kernel refuses an unprivileged 0:0 character
   * device (Linux < 5.8), write the whiteout as an empty file `.wh.NAME`
   * instead, which fuse-overlayfs reads as a deletion (kernel overlay would
   * not: only the fuse-overlayfs driver sets this).
   */
  whiteoutFiles?: boolean;
  userxattr: boolean;
  /**
   * Running as host root (rootful): device nodes can be made. Rootless:
   * device nodes are skipped, one warning per layer, as podman does.
   */
  canMknod: boolean;
  /**
   * Highest uid/gid that exists in the current user namespace (from
   * /proc/self/uid_map); ownership beyond it is an error naming the file and
   * the id.
   */
  maxUid: number;
  maxGid: number;
}

export type { ApplyResult };

/**
 * Applies the uncompressed layer tar `tar` to `dest` (an existing
 * directory). Resolves with the bytes read (the whole stream, drained past
 * the end-of-archive blocks) and the warnings; rejects with a HutchError:
 * LAYER_TRUNCATED, LAYER_INVALID, UNSUPPORTED_TAR, LAYER_UNSAFE,
 * LAYER_ID_UNMAPPED, WHITEOUT_UNSUPPORTED or LAYER_APPLY_FAILED. After a
 * failure `dest` holds a partial tree (never anything outside it) that the
 * caller removes.
 */
export async function applyLayer(tar: Readable, dest: string, opts: ExtractOptions): Promise<ApplyResult> {
  const x = new Extraction(dest, opts);
  try {
    for await (const chunk of tar) {
      x.feed(toBuffer(chunk));
      await x.drained();
    }
    await x.end();
  } catch (e) {
    x.abort();
    throw e;
  }
  return { size: x.pos, warnings: x.warnings };
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'latin1');
  throw new TypeError('applyLayer: the tar stream must yield bytes');
}

const HEADER = 0;
const BODY = 1;
const META = 2;
const SKIP = 3;
const END = 4;

const HINT_TRUNCATED =
  'The layer was cut short (an interrupted download or a damaged blob): pull the image again.';

/** Entry types that make a file system object (the rest of T is extensions, handled before). */
function isKnownType(type: string): boolean {
  switch (type) {
    case T.FILE:
    case T.HARDLINK:
    case T.SYMLINK:
    case T.CHAR:
    case T.BLOCK:
    case T.DIR:
    case T.FIFO:
    case T.CONTIGUOUS:
    case T.GNU_DUMPDIR:
      return true;
    default:
      return false;
  }
}

function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

class Extraction {
  private readonly applier: Applier;
  warnings: string[] = [];
  /** Bytes of the stream consumed so far. */
  pos = 0;
  private state = HEADER;
  /** Bytes left in the current body (or skipped region). */
  private remaining = 0;
  /** Padding after the current body. */
  private pad = 0;
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private zeroBlocks = 0;
  /** The header block's offset in the stream and the entry's name, for messages. */
  private entryAt = 0;
  private entryName = '';
  private entrySize = 0;
  /** What the bytes being skipped belong to, for the truncation message. */
  private skipping = '';
  private meta: Buffer | undefined;
  private metaFill = 0;
  private metaType = '';
  // Extensions waiting for the next real entry.
  private pax: Map<string, Buffer> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  private lossy = false;

  constructor(dest: string, opts: ExtractOptions) {
    this.applier = new Applier(dest, opts);
  }

  feed(chunk: Buffer): void {
    const len = chunk.length;
    let off = 0;
    while (off < len) {
      switch (this.state) {
        case HEADER: {
          if (this.headerFill === 0 && len - off >= BLOCK) {
            this.pos += BLOCK;
            off += BLOCK;
            this.block(chunk, off - BLOCK);
          } else {
            const n = Math.min(BLOCK - this.headerFill, len - off);
            chunk.copy(this.header, this.headerFill, off, off + n);
            this.headerFill += n;
            this.pos += n;
            off += n;
            if (this.headerFill === BLOCK) {
              this.headerFill = 0;
              this.block(this.header, 0);
            }
          }
          break;
        }
        case BODY: {
          const n = Math.min(this.remaining, len - off);
          try {
            this.applier.write(chunk, off, n);
          } catch (e) {
            throw this.wrap(e);
          }
          this.remaining -= n;
          this.pos += n;
          off += n;
          if (this.remaining === 0) this.endBody();
          break;
        }
        case META: {
          const n = Math.min(this.remaining, len - off);
          chunk.copy(this.meta!, this.metaFill, off, off + n);
          this.metaFill += n;
          this.remaining -= n;
          this.pos += n;
          off += n;
          if (this.remaining === 0) this.endMeta();
          break;
        }
        case SKIP: {
          const n = Math.min(this.remaining, len - off);
          this.remaining -= n;
          this.pos += n;
          off += n;
          if (this.remaining === 0) this.state = HEADER;
          break;
        }
        default:
          // After the end-of-archive blocks: drained and counted, not read.
          this.pos += len - off;
          off = len;
      }
    }
  }

  /** Waits while many bytes are still being written behind; throws what failed there. */
  async drained(): Promise<void> {
    if (this.applier.tooFarBehind()) await this.applier.drained();
    this.throwFailure();
  }

  private throwFailure(): void {
    const f = this.applier.failure;
    if (f) throw this.wrap(f.error, f.name);
  }

  /** The stream ended. */
  async end(): Promise<void> {
    const pending = this.pax !== undefined || this.longName !== undefined || this.longLink !== undefined;
    // Ending at a block boundary without the two zero blocks is accepted, as Go's archive/tar does.
    if (this.state === END || (this.state === HEADER && this.headerFill === 0 && !pending)) {
      await this.applier.settle();
      this.throwFailure();
      this.warnings = this.guard(() => this.applier.finish());
      return;
    }
    let where: string;
    if (this.state === HEADER && this.headerFill > 0)
      where = `inside a tar header at byte ${this.pos - this.headerFill}`;
    else if (this.state === HEADER) where = `after the extended header of an entry, before the entry itself`;
    else if (this.state === META) where = `inside an extended header at byte ${this.entryAt}`;
    else if (this.state === BODY) {
      const got = this.entrySize - this.remaining;
      where = `in the middle of ${this.entryName}: ${got} of its ${this.entrySize} bytes were there`;
    } else where = this.skipping;
    throw new HutchError(
      'LAYER_TRUNCATED',
      `the layer's tar stream ended ${where} (${this.pos} bytes read)`,
      {
        hint: HINT_TRUNCATED,
      },
    );
  }

  abort(): void {
    this.applier.abort();
  }

  private guard<R>(f: () => R): R {
    try {
      return f();
    } catch (e) {
      throw this.wrap(e);
    }
  }

  /** File system errors become LAYER_APPLY_FAILED naming the entry. */
  private wrap(e: unknown, entry = this.entryName): unknown {
    if (isHutchError(e)) return e;
    const code = errnoCode(e);
    const hint =
      code === 'ENOSPC' || code === 'EDQUOT'
        ? 'The storage is full: free space (hutch system prune) or move the store (--root).'
        : 'Check that the store is on a local file system hutch can write (`hutch doctor`).';
    return new HutchError(
      'LAYER_APPLY_FAILED',
      `cannot extract ${entry || 'the layer'}: ${(e as Error).message}`,
      {
        hint,
        cause: e,
      },
    );
  }

  private endBody(): void {
    this.guard(() => this.applier.endFile());
    this.afterBody(`in the padding after ${this.entryName}`);
  }

  private afterBody(skipping: string): void {
    this.skipping = skipping;
    if (this.pad > 0) {
      this.remaining = this.pad;
      this.pad = 0;
      this.state = SKIP;
    } else this.state = HEADER;
  }

  private block(b: Buffer, off: number): void {
    const at = this.pos - BLOCK;
    if (isZeroBlock(b, off)) {
      if (++this.zeroBlocks === 2) this.state = END;
      return;
    }
    if (this.zeroBlocks > 0)
      throw invalid(`a zero block at byte ${at - BLOCK} in the middle of the tar stream`);
    const h = parseHeader(b, off, at);
    this.entryAt = at;
    switch (h.type) {
      case T.PAX:
      case T.PAX_GLOBAL:
      case T.GNU_LONGNAME:
      case T.GNU_LONGLINK:
        if (h.size > MAX_META_BODY) {
          throw unsupported(
            `an extended tar header of ${h.size} bytes at byte ${at} (hutch accepts up to ${MAX_META_BODY})`,
          );
        }
        this.metaType = h.type;
        this.meta = Buffer.allocUnsafe(h.size);
        this.metaFill = 0;
        this.remaining = h.size;
        this.pad = padding(h.size);
        this.state = META;
        if (h.size === 0) this.endMeta();
        return;
      case T.GNU_VOLUME:
        this.skipBody(h.size);
        return;
      case 'M':
        throw unsupported(`multi-volume tar entry at byte ${at}`);
      default:
        this.entry(h, at);
    }
  }

  private skipBody(size: number): void {
    this.skipping = `in the middle of ${this.entryName}`;
    this.remaining = size + padding(size);
    this.state = this.remaining > 0 ? SKIP : HEADER;
  }

  private endMeta(): void {
    const body = this.meta!;
    this.meta = undefined;
    const at = this.entryAt;
    switch (this.metaType) {
      case T.PAX: {
        const records = parsePax(body, at);
        if (this.pax === undefined) this.pax = records;
        else for (const [k, v] of records) this.pax.set(k, v);
        break;
      }
      case T.GNU_LONGNAME:
      case T.GNU_LONGLINK: {
        const out = { lossy: false };
        const s = longName(body, out);
        if (out.lossy) this.lossy = true;
        if (this.metaType === T.GNU_LONGNAME) this.longName = s;
        else this.longLink = s;
        break;
      }
      default:
      // 'g': global PAX records describe the archive, not files: ignored, as docker does.
    }
    this.afterBody(`inside an extended header at byte ${at}`);
  }

  private entry(h: Header, at: number): void {
    const lossy = { lossy: h.lossyName || this.lossy };
    let name = this.longName ?? h.name;
    let linkname = this.longLink ?? h.linkname;
    let size = h.size;
    let uid = h.uid;
    let gid = h.gid;
    let mtime = h.mtime;
    let atime: number | undefined;
    let xattrs: Map<string, Buffer> | undefined;
    let sparse = false;
    if (this.pax !== undefined) {
      for (const [k, v] of this.pax) {
        if (v.length === 0) continue; // an empty value deletes the keyword: the header's field stands
        switch (k) {
          case 'path':
            name = paxText(v, lossy);
            break;
          case 'linkpath':
            linkname = paxText(v, lossy);
            break;
          case 'size':
            size = paxNumber(v, k, at, false);
            break;
          case 'uid':
            uid = paxNumber(v, k, at, false);
            break;
          case 'gid':
            gid = paxNumber(v, k, at, false);
            break;
          case 'mtime':
            mtime = paxNumber(v, k, at, true);
            break;
          case 'atime':
            atime = paxNumber(v, k, at, true);
            break;
          default:
            if (k.startsWith('SCHILY.xattr.')) (xattrs ??= new Map()).set(k.slice(13), v);
            else if (k.startsWith('LIBARCHIVE.xattr.')) {
              const [xn, xv] = libarchiveXattr(k.slice(17), v);
              (xattrs ??= new Map()).set(xn, xv);
            } else if (k.startsWith('GNU.sparse.')) sparse = true;
        }
      }
    }
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    this.lossy = false;
    this.entryName = name;
    if (size < 0 || uid < 0 || gid < 0)
      throw invalid(`tar header at byte ${at} (${name}): negative size or id`);
    let type = h.type;
    if (type === T.FILE && name.endsWith('/') && size === 0) type = T.DIR; // pre-POSIX directories
    if (sparse || type === T.GNU_SPARSE) {
      throw unsupported(
        `${name} is a GNU sparse file: hutch does not extract sparse files (expanding them could write far more than the layer holds)`,
      );
    }
    if (!isKnownType(type)) {
      throw unsupported(`${name} has tar entry type ${JSON.stringify(type)}, which hutch does not extract`);
    }
    if (lossy.lossy) this.applier.noteLossyName(name);
    // Links, devices, FIFOs and directories have no body whatever their size field says (as Go's archive/tar).
    const hasBody = type === T.FILE || type === T.CONTIGUOUS || type === T.GNU_DUMPDIR;
    if (!hasBody) size = 0;
    this.entrySize = size;
    const e: Entry = {
      name,
      type,
      linkname,
      size,
      mode: h.mode,
      uid,
      gid,
      mtime,
      atime,
      devmajor: h.devmajor,
      devminor: h.devminor,
      xattrs,
    };
    const open = this.guard(() => this.applier.begin(e));
    if (open) {
      if (size === 0) {
        this.guard(() => this.applier.endFile());
        return;
      }
      this.remaining = size;
      this.pad = padding(size);
      this.state = BODY;
    } else this.skipBody(size);
  }
}
