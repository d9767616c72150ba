/**
 * `hutch commit`: a container's changes become an image, its parent's
 * layers plus one: the diff as a layer tar (whiteouts for deletions), the
 * container's settings as the new config, `--change` instructions on top.
 *
 * The tar is written once, while the container is paused (docker's
 * default): into the ingest area uncompressed, from which the storage
 * driver builds the layer, and gzipped, which is the blob kept for push and
 * save. gzip rather than the uncompressed tar podman keeps locally: hutch
 * pushes and saves the blob it has, as it is, and registries, Docker schema
 * 2 (which knows gzip layers only) and every client take gzip. The layer is
 * named by its chain ID, which only the finished tar's digest tells; the
 * staged copy is what makes one pass enough.
 *
 * A commit with no changes adds no layer, only a history entry marked
 * empty, as docker does.
 */
import { createReadStream } from 'node:fs';
import {
  ParallelGzip,
  PendingBlobs,
  storeOciImage,
  withLayerLock,
  writerDigest,
} from '../../image/archive/layer-blob.ts';
import { removeMadeLayers } from '../../image/layers.ts';
import { applyChanges } from '../../image/archive/changes.ts';
import type { RunConfig } from '../../image/archive/changes.ts';
import { layerTypeFor } from '../../image/push.ts';
import { parseReference, repoName } from '../../image/reference.ts';
import type { BlobWriter } from '../../image/store/blobs.ts';
import { chainIds, hex } from '../../image/store/db.ts';
import type { ImageRecord, LayerRecord } from '../../image/store/db.ts';
import { MEDIA } from '../../image/types.ts';
import type { Descriptor, ImageConfig, ImageManifest } from '../../image/types.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { changesTar, layerPacker } from '../../storage/archive/diff.ts';
import { ownerMapper } from '../../util/idmap.ts';
import { HutchError } from '../../util/errors.ts';
import type { Context } from '../context.ts';
import { configOf } from '../images.ts';
import type { ImageStore } from '../images-store.ts';
import { containerChanges } from './diff.ts';
import { pausedDuring } from './export.ts';
import { openContainers } from './open.ts';
import { isRunning } from './stop.ts';

export interface CommitOptions {
  author?: string | undefined;
  message?: string | undefined;
  changes?: string[];
  /** Pause a running container while its changes are read (docker's default: true). */
  pause?: boolean;
}

/** The container's settings as an image config, as docker commit makes it. */
export function runConfigOf(rec: ContainerRecord, parent: RunConfig | undefined): RunConfig {
  const c = rec.config;
  const out: RunConfig = structuredClone(parent ?? {});
  // undefined leaves the key out of the JSON.
  const set = <K extends keyof RunConfig>(key: K, value: RunConfig[K] | undefined): void => {
    out[key] = value;
  };
  set('Cmd', c.cmd.length > 0 ? [...c.cmd] : null);
  set('Entrypoint', c.entrypoint.length > 0 ? [...c.entrypoint] : null);
  // The image's variables then the container's own, a later one replacing an earlier of the same name.
  const env = new Map<string, string>();
  for (const e of c.env) {
    const eq = e.indexOf('=');
    env.set(eq < 0 ? e : e.slice(0, eq), e);
  }
  set('Env', env.size > 0 ? [...env.values()] : undefined);
  set('WorkingDir', c.workingDir || undefined);
  set('User', c.user || undefined);
  set('Labels', Object.keys(c.labels).length > 0 ? { ...c.labels } : undefined);
  const ports = c.exposedPorts.map((p) => (p.includes('/') ? p : `${p}/tcp`));
  set('ExposedPorts', ports.length > 0 ? Object.fromEntries(ports.map((p) => [p, {}])) : undefined);
  // Anonymous volumes (the image's and `-v /path`) stay volumes of the new image; binds do not.
  const volumes: Record<string, object> = { ...(parent?.Volumes ?? {}) };
  for (const m of rec.hostConfig.mounts) if (m.options.includes('anonymous')) volumes[m.destination] = {};
  set('Volumes', Object.keys(volumes).length > 0 ? volumes : undefined);
  if (c.stopSignal && (c.stopSignal !== 'SIGTERM' || parent?.StopSignal !== undefined))
    set('StopSignal', c.stopSignal);
  const h = c.healthcheck;
  if (h) {
    set(
      'Healthcheck',
      h.test[0] === 'NONE'
        ? { Test: ['NONE'] }
        : {
            Test: h.test,
            Interval: h.intervalMs * 1e6,
            Timeout: h.timeoutMs * 1e6,
            StartPeriod: h.startPeriodMs * 1e6,
            Retries: h.retries,
          },
    );
  }
  return out;
}

/** The parent's layers as OCI descriptors, each naming a blob this store has. */
function parentLayers(s: ImageStore, image: ImageRecord): Descriptor[] {
  let manifest: ImageManifest | undefined;
  try {
    manifest = JSON.parse(s.blobs.read(image.manifestDigest).toString('utf8')) as ImageManifest;
  } catch {
    manifest = undefined;
  }
  const records = s.db.read().layers;
  return image.layers.map((id, i) => {
    const d = manifest?.layers[i];
    if (d && s.blobs.has(d.digest))
      return { mediaType: layerTypeFor(d.mediaType, 'oci'), digest: d.digest, size: d.size };
    const rec = records.find((l) => l.id === id);
    const blob = rec?.compressedDigest;
    if (blob && s.blobs.has(blob)) {
      return {
        mediaType: layerTypeFor(rec.mediaType ?? MEDIA.ociLayerGzip, 'oci'),
        digest: blob,
        size: s.blobs.size(blob),
      };
    }
    // Push and save find such a blob through the layer record, or say what is missing.
    if (d) return { mediaType: layerTypeFor(d.mediaType, 'oci'), digest: d.digest, size: d.size };
    throw new HutchError(
      'NO_BLOB',
      `layer ${i + 1} of image ${image.id.slice(0, 12)} has no blob in the store`,
      {
        hint: 'Pull the image again (hutch pull), then commit.',
      },
    );
  });
}

interface Staged {
  /** The uncompressed tar (its digest is the diff ID). */
  tar: BlobWriter;
  gzip: BlobWriter;
  entries: number;
}

/** Writes the container's changes as a layer tar, uncompressed and gzipped at once. */
async function stageLayer(
  s: ImageStore,
  rec: ContainerRecord,
  c: ReturnType<typeof openContainers>,
): Promise<Staged> {
  const tar = s.blobs.writer();
  const gzip = s.blobs.writer();
  try {
    // An image holds owners as its containers see them: undo a container's own ID mapping.
    const packer = layerPacker({
      mapOwner: rec.idMappings ? ownerMapper(rec.idMappings, 'to-container') : undefined,
    });
    const pg = new ParallelGzip((chunk) => gzip.write(chunk));
    for (const chunk of changesTar(containerChanges(c, rec), packer)) {
      tar.write(chunk);
      const wait = pg.write(chunk);
      if (wait) await wait;
    }
    await pg.end();
    return { tar, gzip, entries: packer.entries };
  } catch (e) {
    tar.abort();
    gzip.abort();
    throw e;
  }
}

export async function commitContainer(
  ctx: Context,
  ref: string,
  reference: string | undefined,
  opts: CommitOptions = {},
): Promise<ImageRecord> {
  // Everything the user can get wrong fails before anything is read.
  const names: string[] = [];
  if (reference !== undefined && reference !== '') {
    const r = parseReference(reference);
    if (r.digest) {
      throw new HutchError('BAD_REFERENCE', `cannot commit to a digest: ${reference}`, {
        hint: 'Give REPOSITORY[:TAG].',
      });
    }
    names.push(`${repoName(r)}:${r.tag}`);
  }
  applyChanges({}, opts.changes ?? []);

  const c = openContainers(ctx);
  const s = c.images;
  const rec = c.store.get(ref);
  const image = s.db.read().images.find((i) => i.id === rec.config.imageId);
  if (!image) {
    throw new HutchError(
      'NO_SUCH_IMAGE',
      `the image of container ${rec.name} (${rec.config.image}) is gone`,
      {
        hint: 'Pull the image again, then commit.',
      },
    );
  }
  const parent = configOf(s, image);
  const running = isRunning(c, rec);
  const access = { root: '', rec, running: running && rec.state.status !== 'paused' };
  const staged = await (opts.pause === false
    ? stageLayer(s, rec, c)
    : pausedDuring(c, access, 'commit', () => stageLayer(s, rec, c)));

  const pending = new PendingBlobs(s.blobs);
  pending.discardLater(staged.tar);
  const made: string[] = [];
  try {
    const now = new Date().toISOString();
    const records = s.db.read().layers;
    const layers: LayerRecord[] = image.layers.map((id) => {
      const r = records.find((l) => l.id === id);
      if (!r)
        throw new HutchError(
          'STORE_CORRUPT',
          `layer ${id.slice(0, 12)} of image ${image.id.slice(0, 12)} has no record`,
          {
            hint: 'Run `hutch system check --repair`, then pull the image again.',
          },
        );
      return r;
    });
    const descriptors = parentLayers(s, image);
    const diffIds = [...parent.rootfs.diff_ids];
    const empty = staged.entries === 0;
    if (empty) staged.gzip.abort();
    else {
      const diffId = writerDigest(staged.tar);
      diffIds.push(diffId);
      const id = hex(chainIds(diffIds).at(-1)!);
      const parentId = image.layers.at(-1);
      const layer = await withLayerLock(s.blobs, id, async () => {
        // Another commit of the same changes may have made it meanwhile.
        const have = s.db.read().layers.find((l) => l.id === id);
        const gzDigest = writerDigest(staged.gzip);
        if (!s.driver.hasLayer(id)) {
          // The bytes are our own, hashed as they were written: the driver reads them as they are.
          await s.driver.createLayer(
            id,
            parentId,
            createReadStream(staged.tar.tmp, { highWaterMark: 1 << 20 }),
          );
          made.push(id);
        }
        if (have?.compressedDigest && s.blobs.has(have.compressedDigest)) {
          staged.gzip.abort();
          return have;
        }
        pending.addWriter(staged.gzip, gzDigest, staged.gzip.written);
        const r: LayerRecord = {
          id,
          chainId: `sha256:${id}`,
          diffId,
          parent: parentId,
          compressedDigest: gzDigest,
          mediaType: MEDIA.ociLayerGzip,
          size: staged.tar.written,
          created: now,
        };
        return r;
      });
      layers.push(layer);
      descriptors.push({
        mediaType: layerTypeFor(layer.mediaType ?? MEDIA.ociLayerGzip, 'oci'),
        digest: layer.compressedDigest!,
        size: pending.sizeOf(layer.compressedDigest!) ?? s.blobs.size(layer.compressedDigest!),
      });
    }

    // Docker's legacy fields describe the parent's build, not this commit; the author is this commit's.
    const {
      author: _author,
      container: _container,
      container_config: _containerConfig,
      docker_version: _dockerVersion,
      ...rest
    } = parent as ImageConfig & { container?: unknown; container_config?: unknown; docker_version?: unknown };
    const config: ImageConfig = {
      ...rest,
      created: now,
      ...(opts.author ? { author: opts.author } : {}),
      config: applyChanges(runConfigOf(rec, parent.config), opts.changes ?? []),
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: [
        ...(parent.history ?? []),
        {
          created: now,
          created_by: rec.config.cmd.join(' '),
          ...(opts.author ? { author: opts.author } : {}),
          ...(opts.message ? { comment: opts.message } : {}),
          ...(empty ? { empty_layer: true } : {}),
        },
      ],
    };
    return await storeOciImage(s.db, pending, { config, descriptors, layers, names, created: now });
  } catch (e) {
    staged.gzip.abort();
    pending.discard();
    removeMadeLayers(s.driver, s.db, made);
    throw e;
  }
}
