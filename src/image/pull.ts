/**
 * Pulling an image: manifest (through an index to this platform's), config,
 * then the layers in order. Each missing layer is streamed from the registry
 * once: the compressed bytes go to the content store (verified against the
 * digest) while the decompressed bytes are unpacked into the storage driver
 * (verified against the config's diff ID), so download and unpacking overlap
 * as in `curl | tar -xz`. The next layers download meanwhile. Nothing
 * becomes visible until verified: blobs are renamed into place, layers are
 * published by rename, and the image record is written last.
 */
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { LayerDriver } from '../storage/types.ts';
import { lockFileAsync } from '../sys/lock.ts';
import { HutchError } from '../util/errors.ts';
import { log } from '../util/log.ts';
import { fileChunks } from '../util/file-chunks.ts';
import { removeMadeLayers, unpackLayer } from './layers.ts';
import { resumableBlob } from './resume.ts';
import { selectManifest } from './platform.ts';
import { formatReference, repoName } from './reference.ts';
import type { BlobStore } from './store/blobs.ts';
import { chainIds, hex, recordImage } from './store/db.ts';
import type { ImageDb, ImageRecord, LayerRecord } from './store/db.ts';
import { MEDIA } from './types.ts';
import type {
  Descriptor,
  Digest,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  ImageReference,
  Platform,
} from './types.ts';

/** What pull needs from a registry (src/image/registry provides it). */
export interface RegistryAccess {
  getManifest(
    repository: string,
    reference: string,
    accept: string[],
  ): Promise<{ mediaType: string; digest: Digest; bytes: Buffer }>;
  getBlob(
    repository: string,
    digest: Digest,
    opts?: { offset?: number },
  ): Promise<{ stream: Readable; size: number }>;
}

export interface PullProgress {
  /** `bytes` (downloaded so far) comes with 'downloading' events, as they stream. */
  layer(event: {
    digest: Digest;
    state: 'exists' | 'downloading' | 'done';
    size: number;
    bytes?: number;
  }): void;
}

export interface PullInput {
  ref: ImageReference;
  registry: RegistryAccess;
  blobs: BlobStore;
  db: ImageDb;
  driver: LayerDriver;
  platform: Platform;
  progress?: PullProgress;
  /** Layers downloaded ahead of the one being unpacked. */
  prefetch?: number;
}

const ACCEPT = [
  MEDIA.ociIndex,
  MEDIA.dockerList,
  MEDIA.ociManifest,
  MEDIA.dockerManifest,
  MEDIA.dockerSchema1Signed,
  MEDIA.dockerSchema1,
];
const CONFIG_TYPES = new Set<string>([MEDIA.ociConfig, MEDIA.dockerConfig]);
const LAYER_TYPES = new Set<string>([
  MEDIA.ociLayer,
  MEDIA.ociLayerGzip,
  MEDIA.ociLayerZstd,
  MEDIA.dockerLayerGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

function parseJson<T>(bytes: Buffer, what: string, name: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new HutchError('BAD_MANIFEST', `the ${what} of ${name} is not valid JSON`, {
      hint: 'The registry returned something that is not an image: check the reference and the registry.',
    });
  }
}

function checkManifest(m: ImageManifest, name: string): void {
  if (m.schemaVersion !== 2 || typeof m.config !== 'object' || !Array.isArray(m.layers)) {
    throw new HutchError('BAD_MANIFEST', `the manifest of ${name} is not a schema 2 image manifest`, {
      hint: 'Check the reference; hutch pulls OCI and Docker schema 2 images.',
    });
  }
  if (!CONFIG_TYPES.has(m.config.mediaType)) {
    throw new HutchError(
      'WRONG_MEDIA_TYPE',
      `${name}'s config has media type "${m.config.mediaType}", which is not an image config`,
      {
        hint: 'This is not a container image (perhaps a Helm chart or another OCI artifact).',
      },
    );
  }
  for (const l of m.layers) {
    if (!LAYER_TYPES.has(l.mediaType)) {
      throw new HutchError(
        'WRONG_MEDIA_TYPE',
        `${name} has a layer of media type "${l.mediaType}", which hutch cannot unpack`,
        {
          hint: 'Layers must be tar, tar+gzip or tar+zstd.',
        },
      );
    }
  }
}

/** Resolves the reference to this platform's manifest, following an index. */
async function resolveManifest(input: PullInput): Promise<{
  manifest: ImageManifest;
  manifestDigest: Digest;
  manifestType: string;
  topDigest: Digest;
  /** The manifests on disk: awaited before the image is recorded. */
  stored: Promise<unknown>;
}> {
  const { ref, registry, blobs } = input;
  const name = formatReference(ref);
  const top = await registry.getManifest(ref.repository, ref.digest ?? ref.tag ?? 'latest', ACCEPT);
  if (ref.digest && top.digest !== ref.digest) {
    throw new HutchError('DIGEST_MISMATCH', `the registry returned manifest ${top.digest} for ${name}`, {
      hint: 'The registry is broken or was tampered with; nothing was stored.',
    });
  }
  const topType =
    top.mediaType || parseJson<{ mediaType?: string }>(top.bytes, 'manifest', name).mediaType || '';
  if (topType === MEDIA.dockerSchema1 || topType === MEDIA.dockerSchema1Signed) {
    throw new HutchError(
      'UNSUPPORTED_SCHEMA1',
      `${name} is a Docker schema 1 image, which is deprecated and unsupported`,
      {
        hint: 'Re-push the image with a current Docker, podman or hutch: they write schema 2 / OCI.',
      },
    );
  }
  if (topType === MEDIA.ociIndex || topType === MEDIA.dockerList) {
    const index = parseJson<ImageIndex>(top.bytes, 'index', name);
    if (!Array.isArray(index.manifests)) {
      throw new HutchError('BAD_MANIFEST', `the index of ${name} lists no manifests`, {
        hint: 'Check the registry.',
      });
    }
    const chosen = selectManifest(index.manifests, input.platform, name);
    const m = await registry.getManifest(ref.repository, chosen.digest, ACCEPT);
    if (m.digest !== chosen.digest) {
      throw new HutchError(
        'DIGEST_MISMATCH',
        `manifest ${chosen.digest} of ${name} arrived with digest ${m.digest}`,
        {
          hint: 'The registry is broken or was tampered with; nothing was stored.',
        },
      );
    }
    const manifest = parseJson<ImageManifest>(m.bytes, 'manifest', name);
    checkManifest(manifest, name);
    return {
      manifest,
      manifestDigest: m.digest,
      manifestType: m.mediaType || chosen.mediaType,
      topDigest: top.digest,
      stored: Promise.all([blobs.putAsync(top.bytes, top.digest), blobs.putAsync(m.bytes, m.digest)]),
    };
  }
  if (topType !== MEDIA.ociManifest && topType !== MEDIA.dockerManifest) {
    throw new HutchError('WRONG_MEDIA_TYPE', `${name} has media type "${topType}", which is not an image`, {
      hint: 'Check the reference: this is not a container image.',
    });
  }
  const manifest = parseJson<ImageManifest>(top.bytes, 'manifest', name);
  checkManifest(manifest, name);
  return {
    manifest,
    manifestDigest: top.digest,
    manifestType: topType,
    topDigest: top.digest,
    stored: blobs.putAsync(top.bytes, top.digest),
  };
}

interface LayerPlan {
  desc: Descriptor;
  diffId: Digest;
  chainId: Digest;
  id: string;
  parent: string | undefined;
}

/**
 * Loads a builtin the pull will need at the next turn of the event loop,
 * which falls in a wait for the registry, instead of at its first call,
 * where it would add its loading time (node:crypto's is several
 * milliseconds) to the pull's.
 */
function preload(name: 'node:crypto' | 'node:zlib'): void {
  setImmediate(() => process.getBuiltinModule(name));
}

export async function pullImage(input: PullInput): Promise<ImageRecord> {
  preload('node:crypto'); // for the manifest's digest
  const { manifest, manifestDigest, manifestType, topDigest, stored } = await resolveManifest(input);
  // A failure is reported where it is awaited, before the image is recorded; until then it is not unhandled.
  stored.catch(() => undefined);
  const durable = [stored];
  const downloads = new Downloads(input);
  try {
    downloads.startEarly(manifest);
    return await pullLayers(input, downloads, manifest, manifestDigest, manifestType, topDigest, durable);
  } catch (e) {
    await downloads.cancel();
    // A failed pull leaves no image behind, and none of its layers either (as docker and podman).
    removeMadeLayers(input.driver, input.db, downloads.layersMade);
    throw e;
  } finally {
    downloads.dropUnused();
  }
}

/**
 * Bytes of blobs downloaded ahead that a pull also keeps in memory, at most.
 * Their layers unpack from there as soon as the bytes are verified, while
 * the store's copy is still being flushed: waiting for that fsync and
 * reading the file back held up the next layer by 10-17 ms here. Larger
 * blobs are read back from the store once it has them.
 */
const HOLD_MAX = 64 << 20;

/** The streams still downloading, and whether the pull has given up (no new download starts then). */
interface InFlight {
  streams: Set<Readable>;
  cancelled: boolean;
}

/**
 * The blob downloads of one pull: the first missing layer's as a stream
 * (unpacked as it arrives), the next few into the content store ahead of
 * their turn. They start as soon as the manifest names the blobs, while the
 * config is still being fetched: a registry takes a while to answer a blob
 * request, and that wait then overlaps with the config's.
 */
class Downloads {
  readonly #input: PullInput;
  readonly prefetch: number;
  readonly #fetching = new Map<Digest, Promise<void>>();
  /** The bytes of blobs downloaded ahead, stored and verified, kept for their layer (HOLD_MAX). */
  readonly #held = new Map<Digest, Buffer[]>();
  #holding = 0;
  /** Blobs still being flushed and renamed into the store after their bytes were verified. */
  readonly #stored: Promise<void>[] = [];
  /** Streams asked for early and not yet taken by their layer. */
  readonly #primed = new Map<Digest, Readable>();
  readonly inFlight: InFlight = { streams: new Set(), cancelled: false };
  /** The layers this pull unpacked, in order: removed again when it fails. */
  readonly layersMade: string[] = [];

  constructor(input: PullInput) {
    this.#input = input;
    this.prefetch = input.prefetch ?? 2;
  }

  /** Starts on the blobs of layers that look missing: no stored blob, no layer made from it. */
  startEarly(manifest: ImageManifest): void {
    const { blobs, db, driver, registry, ref } = this.#input;
    const named = new Set<string>(manifest.layers.map((l) => l.digest));
    const made = new Set(
      db
        .read()
        .layers.filter((l) => l.compressedDigest && named.has(l.compressedDigest) && driver.hasLayer(l.id))
        .map((l) => l.compressedDigest),
    );
    const missing = manifest.layers.filter((d) => !made.has(d.digest) && !blobs.has(d.digest));
    if (missing.length > 0) preload('node:zlib');
    const first = missing[0];
    if (first) {
      const stream = resumableBlob(registry, ref.repository, first.digest, first.size);
      stream.on('error', () => undefined); // reported to whoever reads it
      stream.read(0); // sends the request; the bytes wait, a megabyte at most, for the unpacking
      this.#primed.set(first.digest, stream);
      this.inFlight.streams.add(stream);
    }
    for (const d of missing.slice(1, this.prefetch + 1)) void this.fetch(d);
  }

  /** The early stream of a blob, taken once. */
  take(digest: Digest): Readable | undefined {
    const s = this.#primed.get(digest);
    this.#primed.delete(digest);
    return s;
  }

  /** Downloads a blob into the content store, once. */
  fetch(desc: Descriptor): Promise<void> {
    let p = this.#fetching.get(desc.digest);
    if (!p && !this.#primed.has(desc.digest)) {
      const hold = desc.size >= 0 && this.#holding + desc.size <= HOLD_MAX;
      if (hold) this.#holding += desc.size;
      p = downloadToStore(this.#input, desc, this.inFlight, hold).then((got) => {
        if (got) {
          got.stored.catch(() => undefined); // awaited in stored()
          this.#stored.push(got.stored);
        }
        if (got?.kept) this.#held.set(desc.digest, got.kept);
        else if (hold) this.#holding -= desc.size;
        // A layer not kept in memory is read back from the store: it waits for the file.
        return got && !got.kept ? got.stored : undefined;
      });
      p.catch(() => undefined); // awaited (and reported) where it is used
      this.#fetching.set(desc.digest, p);
    }
    return p ?? Promise.resolve();
  }

  fetching(digest: Digest): Promise<void> | undefined {
    return this.#fetching.get(digest);
  }

  /** The verified bytes of a blob this pull downloaded ahead and kept, taken once. */
  takeHeld(desc: Descriptor): Buffer[] | undefined {
    const kept = this.#held.get(desc.digest);
    if (kept) {
      this.#held.delete(desc.digest);
      this.#holding -= desc.size;
    }
    return kept;
  }

  /** Resolves when every blob downloaded ahead is in the store (the image is recorded only then). */
  async stored(): Promise<void> {
    await Promise.all(this.#stored);
  }

  /** After a failure: stops every download and waits until each has removed its partial file. */
  async cancel(): Promise<void> {
    this.inFlight.cancelled = true;
    for (const s of this.inFlight.streams) s.destroy();
    await Promise.allSettled(this.#fetching.values());
    await Promise.allSettled(this.#stored);
  }

  /** Early streams no layer took (the layer was made meanwhile, or the pull failed). */
  dropUnused(): void {
    for (const s of this.#primed.values()) {
      s.destroy();
      this.inFlight.streams.delete(s);
    }
    this.#primed.clear();
  }
}

async function pullLayers(
  input: PullInput,
  downloads: Downloads,
  manifest: ImageManifest,
  manifestDigest: Digest,
  manifestType: string,
  topDigest: Digest,
  /** Blobs still being flushed; the image is recorded only once they are on disk. */
  durable: Promise<unknown>[],
): Promise<ImageRecord> {
  const { ref, registry, blobs, db, driver } = input;
  const name = formatReference(ref);

  // The config: small, verified, stored.
  let configBytes: Buffer;
  if (blobs.has(manifest.config.digest)) configBytes = blobs.read(manifest.config.digest);
  else {
    const { stream } = await registry.getBlob(ref.repository, manifest.config.digest);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    configBytes = Buffer.concat(chunks);
    const stored = blobs.putAsync(configBytes, manifest.config.digest);
    stored.catch(() => undefined);
    durable.push(stored);
  }
  const config = parseJson<ImageConfig>(configBytes, 'config', name);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new HutchError(
      'BAD_MANIFEST',
      `${name} lists ${manifest.layers.length} layers but its config ${diffIds.length}`,
      {
        hint: 'The image is malformed: rebuild or re-push it.',
      },
    );
  }
  const chains = chainIds(diffIds);
  const plans: LayerPlan[] = manifest.layers.map((desc, i) => ({
    desc,
    diffId: diffIds[i]!,
    chainId: chains[i]!,
    id: hex(chains[i]!),
    parent: i === 0 ? undefined : hex(chains[i - 1]!),
  }));

  // Blobs of layers still to unpack are fetched ahead, a few at a time.
  const missing = plans.filter((p) => !driver.hasLayer(p.id));
  const records: LayerRecord[] = [];
  for (const [i, plan] of plans.entries()) {
    for (const ahead of missing.filter((m) => plans.indexOf(m) > i).slice(0, downloads.prefetch)) {
      if (!blobs.has(ahead.desc.digest)) void downloads.fetch(ahead.desc);
    }
    const size = await ensureLayer(input, plan, downloads);
    records.push({
      id: plan.id,
      chainId: plan.chainId,
      diffId: plan.diffId,
      parent: plan.parent,
      compressedDigest: plan.desc.digest,
      mediaType: plan.desc.mediaType,
      size,
      created: new Date().toISOString(),
    });
  }

  await Promise.all(durable);
  await downloads.stored();
  return recordImage(db, {
    configDigest: manifest.config.digest,
    manifestDigest,
    manifestMediaType: manifestType,
    created: config.created,
    layers: records,
    names: ref.tag ? [`${repoName(ref)}:${ref.tag}`] : [],
    digests: [`${repoName(ref)}@${topDigest}`],
  });
}

/** A blob downloaded ahead and verified: its bytes when kept, and its storing (flush, rename), maybe still under way. */
interface Fetched {
  kept: Buffer[] | undefined;
  stored: Promise<void>;
}

/**
 * Downloads a blob into the content store, once even across concurrent
 * pulls. Resolves once all its bytes have arrived and match its digest; with
 * `keep`, they come back too, in order. Undefined when the blob was stored
 * already.
 */
async function downloadToStore(
  input: PullInput,
  desc: Descriptor,
  inFlight: InFlight,
  keep: boolean,
): Promise<Fetched | undefined> {
  const { blobs, registry, ref } = input;
  const lock = await lockFileAsync(join(blobs.ingestDir, `${hex(desc.digest)}.lock`));
  let unlock = true;
  try {
    if (blobs.has(desc.digest) || inFlight.cancelled) return undefined;
    const kept: Buffer[] | undefined = keep ? [] : undefined;
    input.progress?.layer({ digest: desc.digest, state: 'downloading', size: desc.size });
    const stream = resumableBlob(registry, ref.repository, desc.digest, desc.size);
    inFlight.streams.add(stream);
    const w = blobs.writer();
    try {
      for await (const chunk of stream) {
        kept?.push(chunk as Buffer);
        if (!w.writeBehind(chunk as Buffer)) await w.drained();
        input.progress?.layer({
          digest: desc.digest,
          state: 'downloading',
          size: desc.size,
          bytes: w.written,
        });
      }
      w.verify(desc.digest, desc.size);
    } catch (e) {
      w.abort();
      throw e;
    } finally {
      inFlight.streams.delete(stream);
    }
    // The flush and rename go on under the lock, while the caller may already use the bytes.
    unlock = false;
    const stored = w
      .commitAsync(desc.digest, desc.size)
      .catch((e: unknown) => {
        w.abort();
        throw e;
      })
      .finally(() => lock.release());
    return { kept, stored };
  } finally {
    if (unlock) lock.release();
  }
}

/** Makes sure the layer exists in the driver; returns its uncompressed size. */
async function ensureLayer(input: PullInput, plan: LayerPlan, downloads: Downloads): Promise<number> {
  const { driver, blobs, registry, ref } = input;
  const lockPath = join(blobs.ingestDir, `layer-${plan.id}.lock`);
  const lock = await lockFileAsync(lockPath);
  try {
    if (driver.hasLayer(plan.id)) {
      input.progress?.layer({ digest: plan.desc.digest, state: 'exists', size: plan.desc.size });
      return existingSize(input, plan.id);
    }
    const prefetching = downloads.fetching(plan.desc.digest);
    if (prefetching) await prefetching;
    const early = downloads.take(plan.desc.digest);
    const held = downloads.takeHeld(plan.desc);
    let writer: ReturnType<BlobStore['writer']> | undefined;
    let source: Readable;
    if (held) {
      source = Readable.from(held, { objectMode: false });
    } else if (blobs.has(plan.desc.digest)) {
      early?.destroy(); // another pull stored it meanwhile
      source = Readable.from(fileChunks(blobs.path(plan.desc.digest)), { objectMode: false });
    } else {
      input.progress?.layer({ digest: plan.desc.digest, state: 'downloading', size: plan.desc.size });
      const got = {
        stream: early ?? resumableBlob(registry, ref.repository, plan.desc.digest, plan.desc.size),
      };
      // Tee: the compressed bytes to the content store as they stream past.
      writer = blobs.writer();
      const w = writer;
      const progress = input.progress;
      const digest = plan.desc.digest;
      source = got.stream.pipe(
        new Transform({
          transform(chunk: Buffer, _e, done): void {
            try {
              const more = w.writeBehind(chunk);
              progress?.layer({ digest, state: 'downloading', size: plan.desc.size, bytes: w.written });
              if (more) done(null, chunk);
              else w.drained().then(() => done(null, chunk), done);
            } catch (e) {
              done(e as Error);
            }
          },
          // The whole blob has passed (its unpacking has not): flush it meanwhile.
          flush(done): void {
            w.flushSoon();
            done();
          },
        }),
      );
      got.stream.on('error', (e) => source.destroy(e));
    }
    let size: number;
    try {
      const what = `layer ${plan.desc.digest} of ${formatReference(ref)}`;
      const unpacked = await unpackLayer(driver, plan.id, plan.parent, source, plan.diffId, what);
      downloads.layersMade.push(plan.id);
      size = unpacked.size;
      for (const w of unpacked.warnings) log.warn(`layer ${plan.desc.digest.slice(7, 19)}: ${w}`);
      if (writer) await writer.commitAsync(plan.desc.digest, plan.desc.size);
      writer = undefined;
    } catch (e) {
      writer?.abort();
      if (driver.hasLayer(plan.id)) driver.removeLayer(plan.id);
      throw e;
    }
    input.progress?.layer({ digest: plan.desc.digest, state: 'done', size: plan.desc.size });
    return size;
  } finally {
    lock.release();
  }
}

function existingSize(input: PullInput, id: string): number {
  return input.db.read().layers.find((l) => l.id === id)?.size ?? 0;
}
