/**
 * Turning a layer tar stream into a layer of the storage driver, verified:
 * the stream may be gzip, zstd or plain (sniffed from its first bytes, since
 * registries and archives mislabel), its uncompressed bytes are hashed into
 * the diff ID, and a layer whose diff ID is not the one expected is removed.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LayerDriver } from '../storage/types.ts';
import { HutchError, isHutchError } from '../util/errors.ts';
import type { ImageDb } from './store/db.ts';
import type { Digest } from './types.ts';

/** Counts and hashes what flows through. */
export class Hasher extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (e?: Error | null, data?: Buffer) => void,
  ): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/**
 * How far decompression may run ahead of unpacking: it works on a thread of
 * its own while the main thread hashes and writes what came before.
 */
const AHEAD = 8 << 20;
/** zlib's streams take stream options too (Node passes them on), though its types do not say so. */
const ahead = { readableHighWaterMark: AHEAD } as object;

function decompressor(first: Buffer): Transform | undefined {
  const zlib = process.getBuiltinModule('node:zlib');
  // Large output chunks: gunzip with the default 16 KiB ones costs half again as much.
  if (first[0] === 0x1f && first[1] === 0x8b) return zlib.createGunzip({ chunkSize: 1 << 18, ...ahead });
  if (first.length >= 4 && first.readUInt32LE(0) === 0xfd2fb528) {
    if (typeof zlib.createZstdDecompress !== 'function') {
      throw new HutchError(
        'UNSUPPORTED_COMPRESSION',
        'this layer is zstd-compressed and this Node has no zstd',
        {
          hint: 'Run hutch with the Node it pins (npm install), which has zstd.',
        },
      );
    }
    return zlib.createZstdDecompress(ahead);
  }
  return undefined;
}

/**
 * Moves `from` into `to` a turn of the event loop later than `from` makes
 * it. pipe() would hand each chunk on inside the decompressor's callback,
 * so hashing and unpacking it would run before the decompressor's next
 * chunk is even started; read this way, the two overlap.
 */
async function relay(from: Readable, to: PassThrough): Promise<void> {
  const { once } = process.getBuiltinModule('node:events');
  try {
    for await (const chunk of from) {
      if (to.destroyed) return;
      if (!to.write(chunk)) await Promise.race([once(to, 'drain'), once(to, 'close')]);
    }
    to.end();
  } catch (e) {
    to.destroy(e as Error);
  }
}

/**
 * Writes what `from` yields to the decompressor `to`, all that arrived
 * while it worked on the last write as one: each write costs it a trip to
 * the thread pool and back, and a download comes in 64 KiB pieces, so
 * piped one by one the trips, not the decompressing, set the pace.
 */
function feedInBatches(from: Readable, to: Transform): void {
  // Pieces are joined here, reused: the decompressor is done with a write's
  // bytes when it calls back, and fresh memory for each batch cost more
  // (page faults) than the copy.
  let joined: Buffer | undefined;
  let busy = false;
  const pump = (): void => {
    if (busy) return;
    const pieces: Buffer[] = [];
    let bytes = 0;
    for (let piece; (piece = from.read() as Buffer | null) !== null; bytes += piece.length)
      pieces.push(piece);
    if (bytes === 0) return; // 'readable' comes again with more
    let batch = pieces[0]!;
    if (pieces.length > 1) {
      if (!joined || joined.length < bytes) joined = Buffer.allocUnsafe(Math.max(bytes, 1 << 20));
      let at = 0;
      for (const piece of pieces) at += piece.copy(joined, at);
      batch = joined.subarray(0, bytes);
    }
    busy = true;
    to.write(batch, (e) => {
      busy = false;
      if (!e) pump();
    });
  };
  from.on('readable', pump);
  from.on('end', () => to.end());
  from.on('error', (e) => to.destroy(e));
}

/**
 * The uncompressed tar of `source`, whatever its compression: the format is
 * decided from the first four bytes, which may arrive over several chunks.
 */
export function decompressed(source: Readable): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const head: Buffer[] = [];
  let headBytes = 0;
  let decided = false;
  const decide = (ended: boolean): void => {
    decided = true;
    source.off('data', onData);
    source.off('end', onEnd);
    source.pause();
    const first = Buffer.concat(head);
    let d: Transform | undefined;
    try {
      d = decompressor(first);
    } catch (e) {
      out.destroy(e as Error);
      return;
    }
    const tail = new PassThrough({ highWaterMark: 1 << 20 });
    if (first.length > 0) tail.write(first);
    source.on('error', (e) => out.destroy(e));
    if (d) {
      d.on('error', (e) => out.destroy(e));
      feedInBatches(tail, d);
      void relay(d, out);
    } else {
      tail.on('error', (e) => out.destroy(e));
      tail.pipe(out);
    }
    if (ended) tail.end();
    else source.pipe(tail);
  };
  const onData = (chunk: Buffer): void => {
    head.push(chunk);
    headBytes += chunk.length;
    if (headBytes >= 4) decide(false);
  };
  const onEnd = (): void => {
    if (decided) return;
    if (headBytes === 0) out.end();
    else {
      // A stream shorter than four bytes: decide on what there is, then end.
      decide(true);
    }
  };
  source.on('data', onData);
  source.on('end', onEnd);
  source.on('error', (e) => {
    if (!decided) out.destroy(e);
  });
  return out;
}

export interface UnpackedLayer {
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  size: number;
  /** What the extractor skipped and why (device nodes it cannot make rootless, ...). */
  warnings: string[];
}

/**
 * Unpacks `source` as layer `id` on `parent`. With `expected`, a different
 * diff ID removes the layer and fails. Returns the diff ID, the
 * uncompressed size and the extractor's warnings.
 */
export async function unpackLayer(
  driver: LayerDriver,
  id: string,
  parent: string | undefined,
  source: Readable,
  expected: Digest | undefined,
  what: string,
): Promise<UnpackedLayer> {
  const tar = decompressed(source);
  const hasher = new Hasher();
  const counted = new PassThrough({ highWaterMark: 1 << 20 });
  const piping = pipeline(tar, hasher, counted);
  piping.catch(() => undefined); // reported through Promise.all below
  let warnings: string[];
  try {
    [{ warnings }] = await Promise.all([driver.createLayer(id, parent, counted), piping]);
  } catch (e) {
    // Stop reading and decompressing: nobody consumes them any more.
    source.destroy();
    tar.destroy();
    counted.destroy();
    if (driver.hasLayer(id)) driver.removeLayer(id);
    if (isHutchError(e)) throw e;
    // zlib's and the stream's own errors ("invalid distance code", "premature close") say nothing of what broke.
    throw new HutchError('LAYER_CORRUPT', `${what} could not be unpacked: ${(e as Error).message}`, {
      hint: 'The download was corrupted or the source serves a broken layer; nothing was stored. Try again.',
      cause: e,
    });
  }
  const diffId = hasher.digest();
  if (expected !== undefined && diffId !== expected) {
    driver.removeLayer(id);
    throw new HutchError(
      'DIGEST_MISMATCH',
      `a layer of ${what} unpacks to ${diffId}, not ${expected} as its config says`,
      {
        hint: 'The image is corrupt or was tampered with; the layer was discarded.',
      },
    );
  }
  return { diffId, size: hasher.bytes, warnings };
}

/** Removes layers a failed pull, load or import made, unless a record (another command's) points at them now. */
export function removeMadeLayers(driver: LayerDriver, db: ImageDb, ids: readonly string[]): void {
  const recorded = new Set(db.read().layers.map((l) => l.id));
  for (const id of [...ids].reverse()) {
    if (!recorded.has(id) && driver.hasLayer(id)) driver.removeLayer(id);
  }
}
