/**
 * Tar streams for the extractor's tests: ordinary ones from tar-stream's
 * pack, and hand-made blocks for what pack refuses to write (hostile names,
 * binary PAX values, a size field larger than the data, sparse entries, bad
 * checksums).
 */
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import type { Header } from 'tar-stream';
import type { ExtractOptions } from '../../../../src/storage/extract/index.ts';

export type PackEntry = Partial<Header> & {
  name: string;
  body?: string | Buffer;
  /** PAX records (text values), passed through to tar-stream. */
  pax?: Record<string, string>;
};

/** A tar made by tar-stream's pack, end-of-archive blocks included. */
export async function packTar(entries: PackEntry[]): Promise<Buffer> {
  const p = pack();
  const done = (async () => {
    const parts: Buffer[] = [];
    for await (const c of p) parts.push(c as Buffer);
    return Buffer.concat(parts);
  })();
  for (const { body, ...header } of entries) {
    const h = { mtime: new Date(1_600_000_000_000), ...header };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      const fileLike = h.type === undefined || h.type === 'file' || h.type === 'contiguous-file';
      if (body !== undefined || fileLike) p.entry(h, body ?? '', done);
      else p.entry(h, done); // links, directories, devices: no body, the entry ends itself
    });
  }
  p.finalize();
  return done;
}

export interface RawHeader {
  name: string;
  /** typeflag character; '0' by default. */
  type?: string;
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Write the size field in GNU base-256 (needed past 8 GiB). */
  base256Size?: boolean;
  /** Damage the checksum. */
  badChecksum?: boolean;
}

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

/** One ustar header block, with a correct checksum unless asked otherwise. */
export function header(h: RawHeader): Buffer {
  const b = Buffer.alloc(512);
  const name = Buffer.from(h.name);
  if (name.length > 100) throw new Error(`name too long for a raw header: ${h.name}`);
  name.copy(b, 0);
  octal(b, 100, 8, h.mode ?? (h.type === '5' ? 0o755 : 0o644));
  octal(b, 108, 8, h.uid ?? 0);
  octal(b, 116, 8, h.gid ?? 0);
  const size = h.size ?? 0;
  if (h.base256Size) {
    b[124] = 0x80;
    let v = size;
    for (let i = 135; i > 124; i--) {
      b[i] = v % 256;
      v = Math.floor(v / 256);
    }
  } else octal(b, 124, 12, size);
  octal(b, 136, 12, h.mtime ?? 1_600_000_000);
  b.write(h.type ?? '0', 156, 1, 'latin1');
  if (h.linkname) Buffer.from(h.linkname).copy(b, 157, 0, 100);
  b.write('ustar\u000000', 257, 8, 'latin1');
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  if (h.badChecksum) sum += 1;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

/** `data` padded to whole blocks. */
export function body(data: string | Buffer): Buffer {
  const d = typeof data === 'string' ? Buffer.from(data) : data;
  const pad = (512 - (d.length % 512)) % 512;
  return Buffer.concat([d, Buffer.alloc(pad)]);
}

/** A PAX record `LEN key=value\n` with raw bytes for the value. */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  const rest = Buffer.byteLength(` ${key}=`) + v.length + 1;
  let len = rest + 1;
  while (String(len).length + rest !== len) len = String(len).length + rest;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), v, Buffer.from('\n')]);
}

/** An 'x' extended header (header block and body) for the entry that follows. */
export function pax(records: [string, string | Buffer][], type = 'x'): Buffer {
  const data = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  return Buffer.concat([header({ name: 'PaxHeaders/x', type, size: data.length }), body(data)]);
}

/** A GNU long name ('L') or long link ('K') entry. */
export function gnuLong(name: string, type: 'L' | 'K' = 'L'): Buffer {
  const data = Buffer.concat([Buffer.from(name), Buffer.alloc(1)]);
  return Buffer.concat([header({ name: '././@LongLink', type, size: data.length }), body(data)]);
}

export function fileEntry(name: string, data: string | Buffer, extra: Partial<RawHeader> = {}): Buffer {
  const d = typeof data === 'string' ? Buffer.from(data) : data;
  return Buffer.concat([header({ name, size: d.length, ...extra }), body(d)]);
}

export const END = Buffer.alloc(1024);

export function tarOf(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, END]);
}

/** A stream of `buf` in pieces of `size` bytes (to cross every block boundary). */
export function streamOf(buf: Buffer, size = 64 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts, { objectMode: false });
}

/** Extractor options for the unprivileged user (rootless: no device nodes, user.* xattrs), with changes. */
export function extractOptions(over: Partial<ExtractOptions> = {}): ExtractOptions {
  return {
    whiteouts: 'apply',
    userxattr: true,
    canMknod: false,
    maxUid: 2 ** 32 - 2,
    maxGid: 2 ** 32 - 2,
    ...over,
  };
}
