/**
 * A volume tree's content digest: what send puts in its stream's header and
 * receive checks the tree it built against, so a damaged stream, or a base
 * snapshot that differs from the sender's, is refused instead of becoming a
 * volume that looks right. It covers what a stream carries: every path
 * (bytes), type, permission bits, owner, modification time in whole seconds
 * (tar's precision), file contents, link targets, device numbers and
 * extended attributes. Hard links count as separate files.
 */
import { closeSync, constants, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { fsPath, readXattrs, toBytes } from '../storage/archive/tar-writer.ts';
import type { ByteName } from '../storage/archive/tar-writer.ts';

const CHUNK = 1 << 20;

function fileHash(path: ByteName): string {
  const h = createHash('sha256');
  const fd = openSync(fsPath(path), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function typeOf(st: BigIntStats): string {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  return 's';
}

/** One entry's line: everything about it but its name. */
export function entryLine(path: ByteName, st: BigIntStats): string {
  const parts = [
    typeOf(st),
    (st.mode & 0o7777n).toString(8),
    String(st.uid),
    String(st.gid),
    // Directories' times are the stream's too, except the root's, set last by receive like any other.
    String(st.mtimeMs / 1000n),
  ];
  if (st.isFile()) parts.push(String(st.size), fileHash(path));
  else if (st.isSymbolicLink())
    parts.push(Buffer.from(readlinkSync(fsPath(path), { encoding: 'latin1' }), 'latin1').toString('hex'));
  else if (st.isCharacterDevice() || st.isBlockDevice()) parts.push(String(st.rdev));
  if (!st.isSymbolicLink()) {
    for (const [k, v] of readXattrs(path) ?? []) parts.push(`${k}=${v.toString('hex')}`);
  }
  return parts.join(' ');
}

function walk(h: Hash, abs: ByteName, rel: ByteName): void {
  const st = lstatSync(fsPath(abs), { bigint: true });
  h.update(Buffer.from(rel, 'latin1'));
  h.update('\0');
  h.update(entryLine(abs, st));
  h.update('\n');
  if (!st.isDirectory()) return;
  for (const n of readdirSync(fsPath(abs), { encoding: 'latin1' }).sort()) {
    walk(h, `${abs}/${n}`, rel === '.' ? n : `${rel}/${n}`);
  }
}

/** `sha256:HEX` of the tree at `root` (its top directory's own metadata included, as `.`). */
export function treeDigest(root: string): string {
  const h = createHash('sha256');
  walk(h, toBytes(root), '.');
  return `sha256:${h.digest('hex')}`;
}

/** Bytes of content, every non-directory once per inode (docker's way of counting a volume). */
export function treeSize(root: string): number {
  const seen = new Set<string>();
  let total = 0;
  const visit = (dir: ByteName): void => {
    for (const n of readdirSync(fsPath(dir), { encoding: 'latin1' })) {
      const p = `${dir}/${n}`;
      const st = lstatSync(fsPath(p));
      if (st.isDirectory()) visit(p);
      else if (!seen.has(`${st.dev}:${st.ino}`)) {
        seen.add(`${st.dev}:${st.ino}`);
        total += st.size;
      }
    }
  };
  visit(toBytes(root));
  return total;
}
