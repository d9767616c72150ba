/**
 * A layer's compressed blob, made as the layer streams into the storage
 * driver: compressed input (gzip, zstd) is kept as it is, uncompressed
 * input (a docker-archive's layers, an imported rootfs) is gzipped on the
 * way. The blob is what `push` and `save --format oci-archive` send later.
 * Blobs are left uncommitted (a temporary file in the ingest area) until
 * the whole image has been verified; see PendingBlobs.
 */
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LayerDriver } from '../../storage/types.ts';
import { lockFileAsync } from '../../sys/lock.ts';
import { HutchError } from '../../util/errors.ts';
import { Hasher, decompressed, unpackLayer } from '../layers.ts';
import type { BlobStore, BlobWriter } from '../store/blobs.ts';
import { digestOf } from '../store/blobs.ts';
import { recordImage } from '../store/db.ts';
import type { ImageDb, ImageRecord, LayerRecord } from '../store/db.ts';
import { MEDIA } from '../types.ts';
import type { Descriptor, Digest, ImageConfig, ImageManifest } from '../types.ts';

export type Compression = 'gzip' | 'zstd' | 'none';

/** gzip level for layers hutch compresses itself: 1 is twice as fast as 6 for about 5% more bytes. */
export const GZIP_LEVEL = 1;
/** Bytes compressed as one gzip member, several members at once on zlib's thread pool. */
export const GZIP_BLOCK = 4 << 20;

/**
 * gzip on every core: the input is cut into blocks, each compressed as a
 * gzip member of its own on libuv's thread pool, and the members written in
 * order. Concatenated members are one valid gzip stream (RFC 1952; Go's,
 * zlib's and Node's readers all take them), deterministic for a given
 * input, and about 2% larger than one member.
 */
export class ParallelGzip {
  private parts: Buffer[] = [];
  private buffered = 0;
  private readonly queue: Promise<Buffer>[] = [];
  private started = false;
  private readonly out: (data: Buffer) => void;
  private readonly inFlight: number;

  constructor(
    out: (data: Buffer) => void,
    inFlight = process.getBuiltinModule('node:os').availableParallelism() + 2,
  ) {
    this.out = out;
    this.inFlight = inFlight;
  }

  private launch(): void {
    const block = Buffer.concat(this.parts, this.buffered);
    this.parts = [];
    this.buffered = 0;
    this.started = true;
    const zlib = process.getBuiltinModule('node:zlib');
    const p = new Promise<Buffer>((resolve, reject) =>
      zlib.gzip(block, { level: GZIP_LEVEL }, (err, res) => (err ? reject(err) : resolve(res))),
    );
    p.catch(() => undefined); // awaited in order by drain()
    this.queue.push(p);
  }

  /** Writes finished members out, in order, until at most `keep` are in flight. */
  private async drain(keep: number): Promise<void> {
    while (this.queue.length > keep) this.out(await this.queue.shift()!);
  }

  /** Takes a chunk; the promise, when there is one, says when to send more. */
  write(chunk: Buffer): Promise<void> | undefined {
    this.parts.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < GZIP_BLOCK) return undefined;
    this.launch();
    return this.queue.length >= this.inFlight ? this.drain(this.inFlight - 1) : undefined;
  }

  async end(): Promise<void> {
    if (this.buffered > 0 || !this.started) this.launch();
    await this.drain(0);
  }
}

export function sniffCompression(first: Uint8Array): Compression {
  if (first[0] === 0x1f && first[1] === 0x8b) return 'gzip';
  if (first[0] === 0x28 && first[1] === 0xb5 && first[2] === 0x2f && first[3] === 0xfd) return 'zstd';
  return 'none';
}

export interface BlobInfo {
  digest: Digest;
  size: number;
  compression: Compression;
}

/** What a writer holds so far, without finishing its hash. */
export function writerDigest(w: BlobWriter): Digest {
  return `sha256:${w.hash.copy().digest('hex')}`;
}

export interface TeeMode {
  /** Uncompressed input: gzip it into the blob, or keep it as it is (an OCI layer of media type tar). */
  plain: 'gzip' | 'keep';
  /** Compressed input: keep it as the blob, or skip it (the caller holds those bytes already). */
  compressed: 'keep' | 'skip';
}

/**
 * Passes the bytes through unchanged and writes the layer's blob into
 * `writer` as `mode` says. Back-pressure follows gzip's pace.
 */
export class BlobTee extends Transform {
  compression: Compression | undefined;
  private readonly writer: BlobWriter;
  private readonly mode: TeeMode;
  private gzip: ParallelGzip | undefined;

  constructor(writer: BlobWriter, mode: TeeMode) {
    super({ highWaterMark: 1 << 20 });
    this.writer = writer;
    this.mode = mode;
  }

  private start(first: Buffer | undefined): void {
    this.compression = first ? sniffCompression(first) : 'none';
    if (this.compression !== 'none' || this.mode.plain !== 'gzip') return;
    this.gzip = new ParallelGzip((c) => this.writer.write(c));
  }

  private get keeps(): boolean {
    return this.compression === 'none' ? this.mode.plain === 'keep' : this.mode.compressed === 'keep';
  }

  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (e?: Error | null, d?: Buffer) => void,
  ): void {
    if (this.compression === undefined) this.start(chunk);
    if (this.gzip) {
      let wait: Promise<void> | undefined;
      try {
        wait = this.gzip.write(chunk);
      } catch (e) {
        done(e as Error);
        return;
      }
      if (wait)
        wait.then(
          () => done(null, chunk),
          (e: unknown) => done(e as Error),
        );
      else done(null, chunk);
      return;
    }
    if (this.keeps) {
      try {
        this.writer.write(chunk);
      } catch (e) {
        done(e as Error);
        return;
      }
    }
    done(null, chunk);
  }

  override _flush(done: (e?: Error | null) => void): void {
    if (this.compression === undefined) this.start(undefined);
    if (!this.gzip) {
      done();
      return;
    }
    this.gzip.end().then(
      () => done(),
      (e: unknown) => done(e as Error),
    );
  }

  /** After the stream has ended: the blob written, or undefined when the input was compressed and skipped. */
  result(): BlobInfo | undefined {
    if (!this.gzip && !this.keeps) return undefined;
    return {
      digest: writerDigest(this.writer),
      size: this.writer.written,
      compression: this.gzip ? 'gzip' : (this.compression ?? 'none'),
    };
  }
}

/** Forwards errors down a .pipe() chain, so the last stream (the one a consumer reads) fails when any before it does. */
export function chain(first: Readable, ...rest: Transform[]): Readable {
  let cur: Readable = first;
  for (const t of rest) {
    cur.on('error', (e) => t.destroy(e));
    cur = cur.pipe(t);
  }
  return cur;
}

/**
 * Blobs verified but not yet visible: committed together once the whole
 * image is known good, or discarded together, so a failed load or import
 * leaves nothing behind in the content store.
 */
export class PendingBlobs {
  private readonly writers = new Map<Digest, { writer: BlobWriter; size: number }>();
  private readonly data = new Map<Digest, Uint8Array>();
  private readonly spare: BlobWriter[] = [];
  private readonly blobs: BlobStore;

  constructor(blobs: BlobStore) {
    this.blobs = blobs;
  }

  /** Whether the blob is stored or will be on commit. */
  has(digest: Digest): boolean {
    return this.writers.has(digest) || this.data.has(digest) || this.blobs.has(digest);
  }

  /** The size of a blob waiting to be committed. */
  sizeOf(digest: Digest): number | undefined {
    return this.writers.get(digest)?.size ?? this.data.get(digest)?.length;
  }

  addWriter(writer: BlobWriter, digest: Digest, size: number): void {
    if (this.has(digest)) this.spare.push(writer);
    else {
      this.writers.set(digest, { writer, size });
      writer.flushSoon(); // its fsync overlaps with the layers still to come
    }
  }

  /** A temporary file that only served as a source (a staged, uncompressed member): removed at the end. */
  discardLater(writer: BlobWriter): void {
    this.spare.push(writer);
  }

  addData(data: Uint8Array, digest: Digest): void {
    if (!this.has(digest)) this.data.set(digest, data);
  }

  async commit(): Promise<void> {
    for (const [digest, { writer, size }] of this.writers) {
      if (this.blobs.has(digest)) writer.abort();
      else await writer.commitAsync(digest, size);
    }
    this.writers.clear();
    for (const [digest, bytes] of this.data) this.blobs.put(bytes, digest);
    this.data.clear();
    this.discard();
  }

  /** Drops whatever was not committed. */
  discard(): void {
    for (const { writer } of this.writers.values()) writer.abort();
    this.writers.clear();
    this.data.clear();
    for (const w of this.spare.splice(0)) w.abort();
  }
}

export interface LayerPlace {
  /** The chain ID's hex: the layer's id in the driver. */
  id: string;
  parent: string | undefined;
  diffId: Digest;
}

function notDiffId(got: Digest, want: Digest, what: string): HutchError {
  return new HutchError(
    'DIGEST_MISMATCH',
    `a layer of ${what} unpacks to ${got}, not ${want} as its config says`,
    {
      hint: 'The input is damaged or was tampered with: nothing was stored.',
    },
  );
}

/**
 * Unpacks `input` as the layer (verified against its diff ID), or, when
 * the driver has the layer already (only its blob was missing), reads and
 * verifies it. Returns the uncompressed size and whether a layer was made.
 */
export async function unpackOrVerify(
  driver: LayerDriver,
  layer: LayerPlace,
  input: Readable,
  what: string,
): Promise<{ size: number; created: boolean }> {
  if (driver.hasLayer(layer.id)) {
    const h = new Hasher();
    await pipeline(
      decompressed(input),
      h,
      new Writable({
        write(_c, _e, cb): void {
          cb();
        },
      }),
    );
    const got = h.digest();
    if (got !== layer.diffId) throw notDiffId(got, layer.diffId, what);
    return { size: h.bytes, created: false };
  }
  const { size } = await unpackLayer(driver, layer.id, layer.parent, input, layer.diffId, what);
  return { size, created: true };
}

/** The lock pull takes too: one process makes a given layer at a time. */
export async function withLayerLock<T>(blobs: BlobStore, id: string, fn: () => Promise<T>): Promise<T> {
  const lock = await lockFileAsync(join(blobs.ingestDir, `layer-${id}.lock`));
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** An existing layer whose record names a stored blob: nothing to do for it. */
export function existingLayer(
  driver: LayerDriver,
  db: ImageDb,
  blobs: BlobStore,
  id: string,
): LayerRecord | undefined {
  if (!driver.hasLayer(id)) return undefined;
  const rec = db.read().layers.find((l) => l.id === id);
  return rec?.compressedDigest && blobs.has(rec.compressedDigest) ? rec : undefined;
}

/**
 * The last step of making an image here (import, commit): the config and an
 * OCI manifest over `descriptors` join the pending blobs, all of them become
 * visible together, and the image is recorded.
 */
export async function storeOciImage(
  db: ImageDb,
  pending: PendingBlobs,
  image: {
    config: ImageConfig;
    descriptors: Descriptor[];
    layers: LayerRecord[];
    names: string[];
    created: string;
  },
): Promise<ImageRecord> {
  const configBytes = Buffer.from(JSON.stringify(image.config));
  const configDigest = digestOf(configBytes);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: configBytes.length },
    layers: image.descriptors,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = digestOf(manifestBytes);
  pending.addData(configBytes, configDigest);
  pending.addData(manifestBytes, manifestDigest);
  await pending.commit();
  return recordImage(db, {
    configDigest,
    manifestDigest,
    manifestMediaType: MEDIA.ociManifest,
    created: image.created,
    layers: image.layers,
    names: image.names,
    digests: [],
  });
}
