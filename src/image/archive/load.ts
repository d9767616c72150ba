/**
 * Loading image archives: docker-archive (manifest.json), oci-archive and
 * OCI layout directories (index.json). Every blob and layer is verified
 * (blobs against their digests as they are read, layers against the
 * config's diff IDs as they are unpacked); layers the store has are reused.
 * Nothing becomes visible before the whole archive checks out: blobs stay
 * in the ingest area until the end, layers made by a failed load are
 * removed, and the image records are written last.
 *
 * A docker-archive's layers are uncompressed tars; each is gzipped while
 * it is unpacked, and the image gets a Docker schema 2 manifest built over
 * those blobs, so it can be pushed. Its config is stored byte for byte, so
 * the image ID is the one it was saved with. When manifest.json and the
 * config come before the layers (as hutch writes them), each layer is
 * unpacked as it streams past; otherwise (podman writes manifest.json
 * last) layers are staged in the ingest area first.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { LayerDriver } from '../../storage/types.ts';
import { HutchError } from '../../util/errors.ts';
import { decompressed, removeMadeLayers } from '../layers.ts';
import { selectManifest } from '../platform.ts';
import { digestOf } from '../store/blobs.ts';
import type { BlobStore, BlobWriter } from '../store/blobs.ts';
import { chainIds, hex, recordImage } from '../store/db.ts';
import type { ImageDb, LayerRecord } from '../store/db.ts';
import { MEDIA } from '../types.ts';
import type { Descriptor, Digest, ImageConfig, ImageManifest, Platform } from '../types.ts';
import {
  badArchive,
  nameOfEntry,
  parseDockerManifest,
  parseImageConfig,
  parseImageManifest,
  parseIndex,
  parseOciLayout,
} from './formats.ts';
import type { DockerArchiveImage } from './formats.ts';
import {
  BlobTee,
  PendingBlobs,
  chain,
  existingLayer,
  unpackOrVerify,
  withLayerLock,
  writerDigest,
} from './layer-blob.ts';
import type { BlobInfo } from './layer-blob.ts';
import { ArchiveContents, blobName, readLayoutDir, readTar } from './reader.ts';
import type { Member } from './reader.ts';

export interface LoadTarget {
  blobs: BlobStore;
  db: ImageDb;
  driver: LayerDriver;
  /** For an index in the archive: which of its images to load. */
  platform: Platform;
  progress?: (e: { diffId: Digest; state: 'exists' | 'loading' | 'done' }) => void;
}

export type LoadSource = { stream: Readable } | { dir: string };

export interface LoadedImage {
  /** The config digest's hex. */
  id: string;
  names: string[];
  format: 'docker-archive' | 'oci-archive' | 'oci-dir';
}

interface LayerTask {
  id: string;
  chainId: Digest;
  diffId: Digest;
  parent: string | undefined;
  /** The member holding the layer (docker-archive). */
  member: string;
}

interface DockerPlan {
  images: DockerArchiveImage[];
  configs: { bytes: Buffer; digest: Digest; config: ImageConfig }[];
  tasks: LayerTask[];
  /** Per image, the ids of its layers. */
  imageLayers: string[][];
  next: number;
}

const WHAT = 'the archive';

class Loader {
  readonly t: LoadTarget;
  readonly contents: ArchiveContents;
  readonly pending: PendingBlobs;
  readonly created: string[] = [];
  readonly records = new Map<string, LayerRecord>();
  /** docker-archive: the blob made from each (resolved) layer member. */
  readonly blobOfMember = new Map<string, BlobInfo>();
  docker: DockerPlan | undefined;
  dockerStarted = false;

  constructor(t: LoadTarget) {
    this.t = t;
    this.pending = new PendingBlobs(t.blobs);
    this.contents = new ArchiveContents(t.blobs);
  }

  // ---- shared ----

  /** An existing layer with a stored blob, or one this load made: no work. */
  reusable(id: string): LayerRecord | undefined {
    return this.records.get(id) ?? existingLayer(this.t.driver, this.t.db, this.t.blobs, id);
  }

  record(task: LayerTask, blob: { digest: Digest; mediaType: string }, size: number): LayerRecord {
    const rec: LayerRecord = {
      id: task.id,
      chainId: task.chainId,
      diffId: task.diffId,
      parent: task.parent,
      compressedDigest: blob.digest,
      mediaType: blob.mediaType,
      size,
      created: new Date().toISOString(),
    };
    this.records.set(task.id, rec);
    return rec;
  }

  /** unpackOrVerify, noting what it made. */
  async unpack(task: LayerTask, input: Readable): Promise<number> {
    const made = !this.t.driver.hasLayer(task.id);
    if (made) this.t.progress?.({ diffId: task.diffId, state: 'loading' });
    const { size, created } = await unpackOrVerify(this.t.driver, task, input, WHAT);
    if (created) {
      this.created.push(task.id);
      this.t.progress?.({ diffId: task.diffId, state: 'done' });
    }
    return size;
  }

  withLayerLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return withLayerLock(this.t.blobs, id, fn);
  }

  rollback(): void {
    this.pending.discard();
    this.contents.discard();
    removeMadeLayers(this.t.driver, this.t.db, this.created);
  }

  // ---- docker-archive ----

  /** Builds the plan once manifest.json and every config it names are there. */
  dockerPlan(atEnd = false): DockerPlan | undefined {
    if (this.docker) return this.docker;
    // Members under blobs/ may make this an OCI layout: decided at the end.
    if (!atEnd && (this.contents.sawBlobs || !this.contents.has('manifest.json'))) return undefined;
    const images = parseDockerManifest(this.contents.bytes('manifest.json'));
    if (!atEnd && !images.every((im) => this.contents.has(im.config))) return undefined;
    const configs = images.map((im, i) => {
      const bytes = this.contents.bytes(im.config);
      const digest = digestOf(bytes);
      const m = /^([a-f0-9]{64})\.json$/.exec(im.config);
      if (m && `sha256:${m[1]}` !== digest) {
        throw new HutchError('DIGEST_MISMATCH', `the config ${im.config} has digest ${digest}`, {
          hint: 'The archive is damaged or was tampered with: nothing was loaded.',
        });
      }
      const config = parseImageConfig(bytes, `the config of image ${i + 1} (${im.config})`);
      if (config.rootfs.diff_ids.length !== im.layers.length) {
        throw badArchive(
          `manifest.json lists ${im.layers.length} layers for image ${i + 1} but its config ${config.rootfs.diff_ids.length}`,
        );
      }
      return { bytes, digest, config };
    });
    const tasks: LayerTask[] = [];
    const imageLayers = images.map((im, i) => {
      const diffIds = configs[i]!.config.rootfs.diff_ids;
      const chains = chainIds(diffIds);
      return chains.map((chainId, j) => {
        const id = hex(chainId);
        if (!tasks.some((t) => t.id === id)) {
          tasks.push({
            id,
            chainId,
            diffId: diffIds[j]!,
            parent: j === 0 ? undefined : hex(chains[j - 1]!),
            member: im.layers[j]!,
          });
        }
        return id;
      });
    });
    this.docker = { images, configs, tasks, imageLayers, next: 0 };
    return this.docker;
  }

  /** How many tasks still to do read this member. */
  usesLeft(plan: DockerPlan, member: string): number {
    return plan.tasks.slice(plan.next).filter((t) => t.member === member).length;
  }

  /** Offered a large member as it streams: take it when it is the next layer to unpack. */
  live(name: string): ((s: Readable) => Promise<void>) | undefined {
    const plan = this.dockerPlan();
    if (!plan) return undefined;
    const task = plan.tasks[plan.next];
    if (!task || task.member !== name || this.usesLeft(plan, name) !== 1) return undefined;
    return async (stream) => {
      this.dockerStarted = true;
      await this.dockerLayer(task, name, stream, undefined);
      plan.next++;
    };
  }

  /** Unpacks every next layer whose member has arrived. */
  async advance(atEnd = false): Promise<void> {
    const plan = this.dockerPlan(atEnd);
    if (!plan) return;
    for (;;) {
      const task = plan.tasks[plan.next];
      if (!task) return;
      const m = atEnd ? this.contents.need(task.member) : this.contents.get(task.member);
      if (!m) return;
      if (m.consumed) throw new HutchError('INTERNAL', `${task.member} was consumed but is needed again`);
      this.dockerStarted = true;
      await this.dockerLayer(task, m.name, this.contents.open(m.name), m);
      plan.next++;
    }
  }

  /**
   * Unpacks a layer of a docker-archive, making its blob; a layer the store
   * has already is only read and checked against its diff ID.
   */
  async dockerLayer(task: LayerTask, member: string, source: Readable, m: Member | undefined): Promise<void> {
    await this.withLayerLock(task.id, async () => {
      const existing = this.reusable(task.id);
      if (existing) {
        try {
          await unpackOrVerify(this.t.driver, task, source, WHAT);
        } catch (e) {
          source.destroy();
          throw e;
        }
        this.records.set(task.id, existing);
        this.t.progress?.({ diffId: task.diffId, state: 'exists' });
        return;
      }
      const known = this.blobOfMember.get(member);
      const writer = known ? undefined : this.t.blobs.writer();
      // A staged member's own file serves as the blob when it is compressed already.
      const tee = writer
        ? new BlobTee(writer, { plain: 'gzip', compressed: m?.staged ? 'skip' : 'keep' })
        : undefined;
      let size: number;
      try {
        size = await this.unpack(task, tee ? chain(source, tee) : source);
      } catch (e) {
        source.destroy();
        writer?.abort();
        throw e;
      }
      let blob = known;
      if (!blob && tee && writer) {
        const made = tee.result();
        if (made) {
          blob = made;
          this.pending.addWriter(writer, made.digest, made.size);
        } else {
          writer.abort();
          blob = { digest: m!.digest!, size: m!.size, compression: tee.compression ?? 'gzip' };
          this.pending.addWriter(m!.staged!, blob.digest, blob.size);
        }
        this.blobOfMember.set(member, blob);
      }
      if (!blob) throw new HutchError('INTERNAL', `no blob for ${member}`);
      this.record(task, { digest: blob.digest, mediaType: '' }, size);
    });
  }

  async finishDocker(): Promise<LoadedImage[]> {
    await this.advance(true);
    const plan = this.dockerPlan(true)!;
    const loaded: LoadedImage[] = [];
    const toRecord: (() => LoadedImage)[] = [];
    plan.images.forEach((im, i) => {
      const { bytes, digest, config } = plan.configs[i]!;
      const layers = plan.imageLayers[i]!.map((id) => this.records.get(id)!);
      const compressions = layers.map((l) => this.blobCompression(l));
      const oci = compressions.some((c) => c !== 'gzip');
      const layerType = (c: string): string =>
        !oci
          ? MEDIA.dockerLayerGzip
          : c === 'zstd'
            ? MEDIA.ociLayerZstd
            : c === 'gzip'
              ? MEDIA.ociLayerGzip
              : MEDIA.ociLayer;
      const finalLayers = layers.map((l, j) => ({
        ...l,
        mediaType: l.mediaType || layerType(compressions[j]!),
      }));
      const manifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: oci ? MEDIA.ociManifest : MEDIA.dockerManifest,
        config: { mediaType: oci ? MEDIA.ociConfig : MEDIA.dockerConfig, size: bytes.length, digest },
        layers: finalLayers.map((l, j) => ({
          mediaType: layerType(compressions[j]!),
          size: this.blobSize(l.compressedDigest!),
          digest: l.compressedDigest!,
        })),
      };
      const manifestBytes = Buffer.from(JSON.stringify(manifest));
      const manifestDigest = digestOf(manifestBytes);
      this.pending.addData(bytes, digest);
      this.pending.addData(manifestBytes, manifestDigest);
      toRecord.push(() => {
        const rec = recordImage(this.t.db, {
          configDigest: digest,
          manifestDigest,
          manifestMediaType: manifest.mediaType!,
          created: config.created,
          layers: finalLayers,
          names: im.repoTags,
          digests: [],
        });
        return { id: rec.id, names: im.repoTags, format: 'docker-archive' };
      });
    });
    await this.pending.commit();
    for (const r of toRecord) loaded.push(r());
    return loaded;
  }

  blobCompression(l: LayerRecord): string {
    for (const b of this.blobOfMember.values()) if (b.digest === l.compressedDigest) return b.compression;
    const t = l.mediaType ?? '';
    return t.endsWith('zstd') ? 'zstd' : t.endsWith('.tar') ? 'none' : 'gzip';
  }

  blobSize(digest: Digest): number {
    for (const b of this.blobOfMember.values()) if (b.digest === digest) return b.size;
    return this.t.blobs.size(digest);
  }

  // ---- OCI layout ----

  /** A blob's bytes from the archive or the store, checked against its descriptor. */
  blobBytes(d: Descriptor, what: string): { bytes: Buffer; fromArchive: boolean } {
    const m = this.contents.get(blobName(d.digest));
    let bytes: Buffer;
    let fromArchive = false;
    if (m && !m.inStore) {
      bytes = this.contents.bytes(m.name);
      fromArchive = true;
    } else if (this.t.blobs.has(d.digest)) bytes = this.t.blobs.read(d.digest);
    else throw badArchive(`the archive lacks ${what} (${d.digest})`);
    if (bytes.length !== d.size) {
      throw badArchive(`${what} (${d.digest}) is ${bytes.length} bytes where ${d.size} were announced`);
    }
    return { bytes, fromArchive };
  }

  /** Follows an index (image index or manifest list) to this platform's image manifest. */
  resolveManifest(
    d: Descriptor,
    name: string,
  ): { desc: Descriptor; manifest: ImageManifest; bytes: Buffer; fromArchive: boolean } {
    let desc = d;
    for (let depth = 0; depth < 4; depth++) {
      const { bytes, fromArchive } = this.blobBytes(desc, `the manifest of ${name}`);
      const type = desc.mediaType;
      if (type === MEDIA.ociIndex || type === MEDIA.dockerList) {
        const index = parseIndex(bytes, `the index ${desc.digest}`);
        desc = selectManifest(index.manifests, this.t.platform, name);
        continue;
      }
      if (type !== MEDIA.ociManifest && type !== MEDIA.dockerManifest) {
        throw new HutchError('WRONG_MEDIA_TYPE', `${name} has media type "${type}", which is not an image`, {
          hint: 'The archive holds something other than container images.',
        });
      }
      return { desc, manifest: parseImageManifest(bytes, `the manifest of ${name}`), bytes, fromArchive };
    }
    throw badArchive(`${name}'s indexes nest too deep`);
  }

  async ociLayer(task: LayerTask, desc: Descriptor): Promise<LayerRecord> {
    const have = this.reusable(task.id);
    if (have) {
      // A tar's blobs were checked as they were read; a layout directory's is checked here.
      const m = this.contents.get(blobName(desc.digest));
      if (m?.path !== undefined) await checkFile(m.path, desc.digest);
      this.records.set(task.id, have);
      this.t.progress?.({ diffId: task.diffId, state: 'exists' });
      return have;
    }
    return this.withLayerLock(task.id, async () => {
      const m: Member | undefined = this.contents.get(blobName(desc.digest));
      if (m && !m.inStore && m.size !== desc.size) {
        throw badArchive(`the layer ${desc.digest} is ${m.size} bytes where ${desc.size} were announced`);
      }
      const fromStore = !m || m.inStore;
      if (fromStore && !this.t.blobs.has(desc.digest)) {
        throw badArchive(`the archive lacks the layer ${desc.digest}`);
      }
      if (this.t.driver.hasLayer(task.id) && (fromStore || this.pending.has(desc.digest))) {
        // The layer is here and its blob is stored or about to be.
        return this.record(task, desc, this.existingSize(task.id));
      }
      const fs = process.getBuiltinModule('node:fs');
      const source = fromStore
        ? fs.createReadStream(this.t.blobs.path(desc.digest), { highWaterMark: 1 << 20 })
        : this.contents.open(m.name);
      // A layout directory's blob is copied (and so verified) as it is unpacked.
      let copy: BlobWriter | undefined;
      let tee: BlobTee | undefined;
      if (m?.path !== undefined) {
        copy = this.t.blobs.writer();
        tee = new BlobTee(copy, { plain: 'keep', compressed: 'keep' });
      }
      let size: number;
      try {
        size = await this.unpack(task, tee ? chain(source, tee) : source);
        if (copy) {
          const got = writerDigest(copy);
          if (got !== desc.digest) {
            throw new HutchError('DIGEST_MISMATCH', `the layer blob ${desc.digest} has digest ${got}`, {
              hint: 'The layout is damaged or was tampered with: nothing was loaded.',
            });
          }
        }
      } catch (e) {
        source.destroy();
        copy?.abort();
        throw e;
      }
      if (copy) this.pending.addWriter(copy, desc.digest, desc.size);
      else if (m?.staged) this.pending.addWriter(m.staged, desc.digest, desc.size);
      else if (m?.data) this.pending.addData(m.data, desc.digest);
      return this.record(task, desc, size);
    });
  }

  existingSize(id: string): number {
    return this.t.db.read().layers.find((l) => l.id === id)?.size ?? 0;
  }

  async finishOci(format: 'oci-archive' | 'oci-dir'): Promise<LoadedImage[]> {
    parseOciLayout(this.contents.bytes('oci-layout'));
    const index = parseIndex(this.contents.bytes('index.json'), 'index.json');
    if (index.manifests.length === 0) throw badArchive('index.json lists no images');
    const plans = index.manifests.map((d, i) => {
      const names = nameOfEntry(d);
      const label = names ?? `image ${i + 1} of index.json`;
      const { desc, manifest, bytes, fromArchive } = this.resolveManifest(d, label);
      const cfg = this.blobBytes(manifest.config, `the config of ${label}`);
      const config = parseImageConfig(cfg.bytes, `the config of ${label}`);
      const diffIds = config.rootfs.diff_ids;
      if (diffIds.length !== manifest.layers.length) {
        throw badArchive(`${label} lists ${manifest.layers.length} layers but its config ${diffIds.length}`);
      }
      return { names: names ? [names] : [], desc, manifest, bytes, fromArchive, cfg, config };
    });
    for (const p of plans) {
      const diffIds = p.config.rootfs.diff_ids;
      const chains = chainIds(diffIds);
      for (const [j, layer] of p.manifest.layers.entries()) {
        const task: LayerTask = {
          id: hex(chains[j]!),
          chainId: chains[j]!,
          diffId: diffIds[j]!,
          parent: j === 0 ? undefined : hex(chains[j - 1]!),
          member: blobName(layer.digest),
        };
        await this.ociLayer(task, layer);
      }
      if (p.fromArchive) this.pending.addData(p.bytes, p.desc.digest);
      if (p.cfg.fromArchive) this.pending.addData(p.cfg.bytes, p.manifest.config.digest);
    }
    await this.pending.commit();
    return plans.map((p) => {
      const chains = chainIds(p.config.rootfs.diff_ids);
      const rec = recordImage(this.t.db, {
        configDigest: p.manifest.config.digest,
        manifestDigest: p.desc.digest,
        manifestMediaType: p.manifest.mediaType ?? p.desc.mediaType,
        created: p.config.created,
        layers: chains.map((c) => this.records.get(hex(c))!),
        names: p.names,
        digests: [],
      });
      return { id: rec.id, names: p.names, format };
    });
  }

  async finish(dir: boolean): Promise<LoadedImage[]> {
    const c = this.contents;
    if (c.members.size === 0 && c.links.size === 0) {
      throw badArchive(
        dir ? 'the directory is empty' : 'the archive is empty',
        'Give the file `save` wrote with -i FILE, or pipe it in: hutch load < image.tar',
      );
    }
    const oci = c.has('oci-layout') && c.has('index.json');
    if (oci && !this.dockerStarted) return this.finishOci(dir ? 'oci-dir' : 'oci-archive');
    if (c.has('manifest.json')) return this.finishDocker();
    if (c.has('index.json')) throw badArchive('the archive has index.json but no oci-layout file');
    throw badArchive(
      'the archive is not an image archive: it has neither manifest.json (docker-archive) nor index.json and oci-layout (OCI layout)',
      'Give a file made by `hutch save`, `docker save` or `podman save`; for a root file system tarball use `hutch import`.',
    );
  }
}

async function checkFile(path: string, digest: Digest): Promise<void> {
  const fs = process.getBuiltinModule('node:fs');
  const h = createHash('sha256');
  for await (const c of fs.createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  const got = `sha256:${h.digest('hex')}`;
  if (got !== digest) {
    throw new HutchError('DIGEST_MISMATCH', `the blob ${digest} has digest ${got}`, {
      hint: 'The layout is damaged or was tampered with: nothing was loaded.',
    });
  }
}

/** Loads every image of an archive; on failure, the store is as it was. */
export async function loadArchive(t: LoadTarget, source: LoadSource): Promise<LoadedImage[]> {
  const loader = new Loader(t);
  try {
    if ('dir' in source) {
      readLayoutDir(source.dir, loader.contents);
      if (!loader.contents.has('oci-layout')) {
        throw badArchive(`${source.dir} is not an OCI image layout: it has no oci-layout file`);
      }
      return await loader.finish(true);
    }
    await readTar(
      decompressed(source.stream),
      t.blobs,
      {
        live: (name) => loader.live(name),
        changed: () => loader.advance(),
      },
      loader.contents,
    );
    const loaded = await loader.finish(false);
    loader.contents.discard();
    return loaded;
  } catch (e) {
    loader.rollback();
    throw e;
  }
}
