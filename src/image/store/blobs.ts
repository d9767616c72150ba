/**
 * The content store: every blob (manifest, config, compressed layer) under
 * its sha256 digest, written once, verified (digest and size) before it
 * becomes visible, shared by all images.
 *
 *   ROOT/images/blobs/sha256/<hex>
 *   ROOT/images/ingest/<random>     downloads in progress (garbage after a crash)
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../../util/errors.ts';
import { WriteBehind, closeWhenWritten } from '../../util/write-behind.ts';
import type { Digest } from '../types.ts';

export function digestOf(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function hexOf(digest: Digest): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) {
    throw new HutchError('BAD_DIGEST', `unsupported digest "${digest}"`, {
      hint: 'hutch stores sha256 digests only.',
    });
  }
  return m[1]!;
}

export class BlobStore {
  readonly dir: string;
  readonly ingestDir: string;

  constructor(root: string) {
    this.dir = join(root, 'images/blobs/sha256');
    this.ingestDir = join(root, 'images/ingest');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    mkdirSync(this.ingestDir, { recursive: true, mode: 0o700 });
  }

  path(digest: Digest): string {
    return join(this.dir, hexOf(digest));
  }

  has(digest: Digest): boolean {
    return existsSync(this.path(digest));
  }

  size(digest: Digest): number {
    return statSync(this.path(digest)).size;
  }

  read(digest: Digest): Buffer {
    return readFileSync(this.path(digest));
  }

  /** Stores bytes already in memory (manifests, configs), verifying them first. */
  put(data: Uint8Array, expected?: Digest): Digest {
    const digest = verifiedDigest(data, expected);
    if (this.has(digest)) return digest;
    const w = this.writer();
    w.write(data);
    w.commit(digest, data.length);
    return digest;
  }

  /**
   * put, with the fsync on a worker thread: the blob becomes visible once it
   * is on disk, as with put, but the caller goes on meanwhile (a pull unpacks
   * its first layer while the config is flushed). A wrong digest throws at
   * once; what can fail later (the disk) rejects the promise, which the
   * caller awaits before it records anything that names the blob.
   */
  putAsync(data: Uint8Array, expected?: Digest): Promise<Digest> {
    const digest = verifiedDigest(data, expected);
    if (this.has(digest)) return Promise.resolve(digest);
    const w = this.writer();
    try {
      w.write(data);
    } catch (e) {
      w.abort();
      throw e;
    }
    return w.commitAsync(digest, data.length).then(
      () => digest,
      (e: unknown) => {
        w.abort();
        throw e;
      },
    );
  }

  /** A temporary file in the ingest area, hashed as it is written. */
  writer(): BlobWriter {
    return new BlobWriter(this);
  }

  list(): Digest[] {
    return readdirSync(this.dir)
      .filter((n) => /^[a-f0-9]{64}$/.test(n))
      .map((n) => `sha256:${n}`);
  }

  remove(digest: Digest): void {
    rmSync(this.path(digest), { force: true });
  }

  /** Re-hashes a stored blob: for `system check`. */
  verify(digest: Digest): boolean {
    const h = createHash('sha256');
    const fd = openSync(this.path(digest), 'r');
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      const { readSync } = process.getBuiltinModule('node:fs');
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
    return `sha256:${h.digest('hex')}` === digest;
  }
}

function verifiedDigest(data: Uint8Array, expected: Digest | undefined): Digest {
  const digest = digestOf(data);
  if (expected !== undefined && expected !== digest) {
    throw new HutchError('DIGEST_MISMATCH', `content has digest ${digest}, expected ${expected}`, {
      hint: 'The registry served something else than what was asked for: try again, or check the registry.',
    });
  }
  return digest;
}

/** Bytes waiting to be written past which writeBehind asks the caller to wait. */
const BEHIND_MAX = 16 << 20;

export class BlobWriter {
  readonly tmp: string;
  readonly hash: Hash = createHash('sha256');
  written = 0;
  private fd: number;
  private readonly store: BlobStore;
  /** writeBehind's writes (made on its first call). */
  private behind: WriteBehind | undefined;

  constructor(store: BlobStore) {
    this.store = store;
    this.tmp = join(store.ingestDir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    this.fd = openSync(this.tmp, 'wx', 0o600);
  }

  write(chunk: Uint8Array): void {
    if (this.behind) throw new Error('BlobWriter: write() after writeBehind()');
    this.hash.update(chunk);
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off);
    this.written += chunk.length;
  }

  /**
   * Hashes `chunk` now and writes it on the thread pool (util/write-behind.ts),
   * so that copying it into the page cache overlaps with the caller's next
   * work. The chunk must not change afterwards. Returns false when much is
   * still waiting to be written: the caller then waits for drained() before
   * writing more. A failed write is thrown by the next call, or by
   * commitAsync.
   */
  writeBehind(chunk: Uint8Array): boolean {
    if (this.written > 0 && !this.behind) throw new Error('BlobWriter: writeBehind() after write()');
    this.behind ??= new WriteBehind(this.fd);
    if (this.behind.failed) throw this.behind.failed;
    this.hash.update(chunk);
    this.written += chunk.length;
    this.behind.add(chunk);
    return this.behind.pending < BEHIND_MAX;
  }

  /** Resolves when little is waiting to be written again (or a write failed: the next call says so). */
  async drained(): Promise<void> {
    const b = this.behind;
    while (b && b.pending >= BEHIND_MAX && !b.failed) await b.written();
  }

  private flushed: Promise<void> | undefined;

  /**
   * Nothing more will be written: the fsync starts on the thread pool once
   * the writes in flight are done, so that a large layer's overlaps with
   * unpacking it instead of following it.
   */
  flushSoon(): void {
    if (this.flushed || this.fd < 0) return;
    const { fsync } = process.getBuiltinModule('node:fs');
    const written = this.behind ? this.behind.idle() : Promise.resolve();
    this.flushed = written.then(
      () => new Promise<void>((resolve, reject) => fsync(this.fd, (e) => (e ? reject(e) : resolve()))),
    );
    this.flushed.catch(() => undefined); // awaited in commitAsync
  }

  /** commit, with the fsync on the thread pool (started early by flushSoon when it was called). */
  async commitAsync(expected: Digest, expectedSize?: number): Promise<void> {
    this.flushSoon();
    await this.flushed;
    this.commit(expected, expectedSize, true);
  }

  private digest: string | undefined;

  /**
   * Checks, once every byte has been given, that they are the blob
   * `expected` (digest and size); throws DIGEST_MISMATCH if not. A caller
   * may use bytes it kept once this passed, while commitAsync still runs.
   */
  verify(expected: Digest, expectedSize?: number): void {
    this.digest ??= `sha256:${this.hash.digest('hex')}`;
    if (this.digest !== expected || (expectedSize !== undefined && expectedSize !== this.written)) {
      const what =
        this.digest !== expected
          ? `has digest ${this.digest}`
          : `is ${this.written} bytes where ${expectedSize} were announced`;
      throw new HutchError('DIGEST_MISMATCH', `blob ${expected} ${what}`, {
        hint: 'The download was corrupted or the registry serves wrong content: nothing was stored; try again.',
      });
    }
  }

  /** Verifies digest and size, then makes the blob visible under its digest. */
  commit(expected: Digest, expectedSize?: number, synced = false): void {
    if (this.behind && this.behind.pending > 0) throw new Error('BlobWriter: commit() with writes in flight');
    try {
      this.verify(expected, expectedSize);
    } catch (e) {
      this.abort();
      throw e;
    }
    if (!synced) fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    renameSync(this.tmp, this.store.path(expected));
  }

  abort(): void {
    const fd = this.fd;
    this.fd = -1;
    rmSync(this.tmp, { force: true });
    if (fd >= 0) closeWhenWritten(fd, this.behind);
  }
}
