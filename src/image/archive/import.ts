/**
 * `import`: a root file system tarball (plain, gzip or zstd) becomes a
 * one-layer image with a generated config. The layer's id is its diff ID,
 * known only once the whole tarball has been read, so the input is read
 * twice: a file where it is, a stream (stdin, a URL) from a copy staged in
 * the ingest area. Plain input is gzipped into the layer's blob while it is
 * unpacked; compressed input is kept as it is.
 */
import { createReadStream } from 'node:fs';
import { Transform, Writable } from 'node:stream';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LayerDriver } from '../../storage/types.ts';
import { Hasher, decompressed, removeMadeLayers } from '../layers.ts';
import type { BlobStore, BlobWriter } from '../store/blobs.ts';
import { hex } from '../store/db.ts';
import type { ImageDb, ImageRecord, LayerRecord } from '../store/db.ts';
import { MEDIA } from '../types.ts';
import type { Digest, ImageConfig, Platform } from '../types.ts';
import type { RunConfig } from './changes.ts';
import {
  BlobTee,
  PendingBlobs,
  chain,
  existingLayer,
  storeOciImage,
  unpackOrVerify,
  withLayerLock,
  writerDigest,
} from './layer-blob.ts';
import type { BlobInfo } from './layer-blob.ts';

export interface ImportTarget {
  blobs: BlobStore;
  db: ImageDb;
  driver: LayerDriver;
}

export interface ImportInput {
  source: { file: string } | { stream: Readable };
  /** The config's runtime part (--change applied). */
  config: RunConfig;
  platform: Platform;
  /** The history comment (-m); default "Imported from SOURCE". */
  message: string | undefined;
  /** What the user gave (a path, a URL, "-"), for the default comment. */
  sourceName: string;
  /** Full registry/repository:tag names. */
  names: string[];
}

const devNull = (): Writable =>
  new Writable({
    write(_c, _e, cb): void {
      cb();
    },
  });

/** The tarball's diff ID (and, for a stream, a staged copy to read again). */
async function firstPass(
  blobs: BlobStore,
  source: ImportInput['source'],
): Promise<{ diffId: Digest; staged: BlobWriter | undefined }> {
  const h = new Hasher();
  if ('file' in source) {
    await pipeline(decompressed(createReadStream(source.file, { highWaterMark: 1 << 20 })), h, devNull());
    return { diffId: h.digest(), staged: undefined };
  }
  const staged = blobs.writer();
  try {
    const copy = new Transform({
      transform(c: Buffer, _e, cb): void {
        try {
          staged.write(c);
          cb(null, c);
        } catch (e) {
          cb(e as Error);
        }
      },
    });
    await pipeline(decompressed(chain(source.stream, copy)), h, devNull());
  } catch (e) {
    staged.abort();
    throw e;
  }
  return { diffId: h.digest(), staged };
}

export async function importTarball(t: ImportTarget, input: ImportInput): Promise<ImageRecord> {
  const pending = new PendingBlobs(t.blobs);
  const made: string[] = [];
  const { diffId, staged } = await firstPass(t.blobs, input.source);
  if (staged) pending.discardLater(staged);
  try {
    const id = hex(diffId);
    const layer: LayerRecord = await withLayerLock(t.blobs, id, async () => {
      const have = existingLayer(t.driver, t.db, t.blobs, id);
      if (have) return have;
      const source = createReadStream(staged ? staged.tmp : (input.source as { file: string }).file, {
        highWaterMark: 1 << 20,
      });
      const writer = t.blobs.writer();
      const tee = new BlobTee(writer, { plain: 'gzip', compressed: staged ? 'skip' : 'keep' });
      let size: number;
      try {
        const r = await unpackOrVerify(
          t.driver,
          { id, parent: undefined, diffId },
          chain(source, tee),
          'the tarball',
        );
        if (r.created) made.push(id);
        size = r.size;
      } catch (e) {
        source.destroy();
        writer.abort();
        throw e;
      }
      let blob: BlobInfo | undefined = tee.result();
      if (blob) pending.addWriter(writer, blob.digest, blob.size);
      else {
        writer.abort();
        blob = {
          digest: writerDigest(staged!),
          size: staged!.written,
          compression: tee.compression ?? 'gzip',
        };
        pending.addWriter(staged!, blob.digest, blob.size);
      }
      return {
        id,
        chainId: diffId,
        diffId,
        parent: undefined,
        compressedDigest: blob.digest,
        mediaType: blob.compression === 'zstd' ? MEDIA.ociLayerZstd : MEDIA.ociLayerGzip,
        size,
        created: new Date().toISOString(),
      };
    });

    const now = new Date().toISOString();
    const config: ImageConfig = {
      architecture: input.platform.architecture,
      os: input.platform.os,
      ...(input.platform.variant ? { variant: input.platform.variant } : {}),
      created: now,
      config: input.config,
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created: now, comment: input.message ?? `Imported from ${input.sourceName}` }],
    };
    const layerType = layer.mediaType?.endsWith('zstd')
      ? MEDIA.ociLayerZstd
      : layer.mediaType?.endsWith('.tar')
        ? MEDIA.ociLayer
        : MEDIA.ociLayerGzip;
    return await storeOciImage(t.db, pending, {
      config,
      descriptors: [
        {
          mediaType: layerType,
          digest: layer.compressedDigest!,
          size: pending.sizeOf(layer.compressedDigest!) ?? t.blobs.size(layer.compressedDigest!),
        },
      ],
      layers: [layer],
      names: input.names,
      created: now,
    });
  } catch (e) {
    pending.discard();
    removeMadeLayers(t.driver, t.db, made);
    throw e;
  }
}
