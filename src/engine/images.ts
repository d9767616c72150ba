/**
 * Local image operations: list, inspect, tag, remove, history. Removal
 * collects layers and blobs no remaining image uses.
 */
import { findImage, noSuchImage } from '../image/lookup.ts';
import { parseReference, repoName } from '../image/reference.ts';
import type { ImageRecord } from '../image/store/db.ts';
import type { ImageConfig } from '../image/types.ts';
import { HutchError } from '../util/errors.ts';
import type { Context } from './context.ts';
import { openImageStore } from './images-store.ts';
import type { ImageStore } from './images-store.ts';
import { removeShiftedOf } from '../storage/shifted.ts';

export function configOf(s: ImageStore, image: ImageRecord): ImageConfig {
  return JSON.parse(s.blobs.read(image.configDigest).toString('utf8')) as ImageConfig;
}

export function resolveImage(s: ImageStore, input: string): ImageRecord {
  const found = findImage(s.db.read().images, input);
  if (!found) throw noSuchImage(input);
  return found.image;
}

/** One row per name (or one `<none>` row), as `images` prints them. */
export interface ImageRow {
  ID: string;
  Repository: string;
  Tag: string;
  Digest: string;
  CreatedAt: string;
  CreatedSince: string;
  Size: string;
  Names: string[];
  Dangling: boolean;
  Labels: Record<string, string>;
  /** For filters: the record itself. */
  record: ImageRecord;
}

export function imageRows(s: ImageStore): ImageRow[] {
  return s.db
    .read()
    .images.sort((a, b) => b.created.localeCompare(a.created))
    .flatMap((im): ImageRow[] => {
      let labels: Record<string, string> = {};
      try {
        labels = configOf(s, im).config?.Labels ?? {};
      } catch {
        // A missing config is for system check to report.
      }
      const digest = im.digests[0]?.split('@')[1] ?? im.manifestDigest;
      const base = {
        ID: im.id,
        Digest: digest,
        CreatedAt: im.created,
        CreatedSince: '',
        Size: '',
        Names: im.names,
        Dangling: im.names.length === 0,
        Labels: labels,
        record: im,
      };
      if (im.names.length === 0) return [{ ...base, Repository: '<none>', Tag: '<none>' }];
      return im.names.map((n) => {
        const colon = n.lastIndexOf(':');
        return { ...base, Repository: n.slice(0, colon), Tag: n.slice(colon + 1) };
      });
    });
}

export function listImages(ctx: Context): { store: ImageStore; rows: ImageRow[] } {
  const store = openImageStore(ctx);
  return { store, rows: imageRows(store) };
}

export function tagImage(ctx: Context, source: string, target: string): void {
  const s = openImageStore(ctx);
  const image = resolveImage(s, source);
  const ref = parseReference(target);
  if (ref.digest) {
    throw new HutchError('BAD_REFERENCE', `cannot tag with a digest: ${target}`, {
      hint: 'Give NAME[:TAG].',
    });
  }
  const name = `${repoName(ref)}:${ref.tag}`;
  s.db.update((d) => {
    for (const im of d.images) im.names = im.names.filter((n) => n !== name);
    d.images.find((im) => im.id === image.id)?.names.push(name);
  });
}

export interface RemoveResult {
  untagged: string[];
  deleted: string[];
}

/** Hooks the container layer registers: which images running or stopped containers use. */
const usedBy: ((ctx: Context, imageId: string) => string[])[] = [];

export function onImageUse(fn: (ctx: Context, imageId: string) => string[]): void {
  usedBy.push(fn);
}

/** The containers that use an image (none until the containers issue registers them). */
export function imageUsers(ctx: Context, imageId: string): string[] {
  return usedBy.flatMap((f) => f(ctx, imageId));
}

export function removeImages(
  ctx: Context,
  inputs: string[],
  force: boolean,
): { results: RemoveResult; errors: HutchError[] } {
  const s = openImageStore(ctx);
  const results: RemoveResult = { untagged: [], deleted: [] };
  const errors: HutchError[] = [];
  for (const input of inputs) {
    try {
      const found = findImage(s.db.read().images, input);
      if (!found) throw noSuchImage(input);
      const { image, name } = found;
      // By name, with other names left: untag only, as docker does.
      if (name !== undefined && image.names.length > 1) {
        s.db.update((d) => {
          const im = d.images.find((i) => i.id === image.id);
          if (im) im.names = im.names.filter((n) => n !== name);
        });
        results.untagged.push(name);
        continue;
      }
      if (!force && name === undefined && image.names.length > 1) {
        throw new HutchError(
          'IMAGE_HAS_NAMES',
          `image ${image.id.slice(0, 12)} has several names (${image.names.join(', ')})`,
          {
            hint: 'Remove it by name, one name at a time, or use -f to remove it with all its names.',
            exitCode: 2,
          },
        );
      }
      const users = usedBy.flatMap((f) => f(ctx, image.id));
      if (users.length > 0 && !force) {
        throw new HutchError(
          'IMAGE_IN_USE',
          `image ${image.id.slice(0, 12)} is used by container(s) ${users.join(', ')}`,
          {
            hint: 'Remove those containers first, or use -f.',
            exitCode: 2,
          },
        );
      }
      results.untagged.push(...image.names, ...image.digests);
      deleteImage(s, image.id);
      results.deleted.push(`sha256:${image.id}`);
    } catch (e) {
      if (e instanceof HutchError) errors.push(e);
      else throw e;
    }
  }
  return { results, errors };
}

/** Removes the record, then every layer and blob no other image needs. */
export function deleteImage(s: ImageStore, id: string): void {
  const { layersToRemove, blobsToKeep } = s.db.update((d) => {
    d.images = d.images.filter((i) => i.id !== id);
    const usedLayers = new Set(d.images.flatMap((i) => i.layers));
    const layersToRemove = d.layers.filter((l) => !usedLayers.has(l.id)).map((l) => l.id);
    d.layers = d.layers.filter((l) => usedLayers.has(l.id));
    const blobsToKeep = new Set<string>();
    for (const im of d.images) {
      blobsToKeep.add(im.configDigest);
      blobsToKeep.add(im.manifestDigest);
      for (const dg of im.digests) blobsToKeep.add(dg.split('@')[1]!);
    }
    for (const l of d.layers) if (l.compressedDigest) blobsToKeep.add(l.compressedDigest);
    return { layersToRemove, blobsToKeep };
  });
  // Records are gone first: a crash now leaves unreferenced files (garbage), never dangling records.
  removeShiftedOf(s.driver, layersToRemove);
  for (const l of layersToRemove) s.driver.removeLayer(l);
  for (const b of s.blobs.list()) if (!blobsToKeep.has(b)) s.blobs.remove(b);
}

export function historyOf(
  ctx: Context,
  input: string,
): { Id: string; Created: string; CreatedBy: string; Size: number; Comment: string }[] {
  const s = openImageStore(ctx);
  const image = resolveImage(s, input);
  const config = configOf(s, image);
  const layers = s.db.read().layers;
  const sizes = image.layers.map((id) => layers.find((l) => l.id === id)?.size ?? 0);
  let li = 0;
  const rows = (config.history ?? []).map((h) => ({
    Id: '<missing>',
    Created: h.created ?? '',
    CreatedBy: h.created_by ?? '',
    Size: h.empty_layer ? 0 : (sizes[li++] ?? 0),
    Comment: h.comment ?? '',
  }));
  if (rows.length === 0)
    rows.push(
      ...sizes.map((sz) => ({
        Id: '<missing>',
        Created: image.created,
        CreatedBy: '',
        Size: sz,
        Comment: '',
      })),
    );
  rows.reverse();
  if (rows[0]) rows[0].Id = `sha256:${image.id}`;
  return rows;
}

/** Docker's `image inspect` shape. */
export function inspectImage(s: ImageStore, image: ImageRecord): Record<string, unknown> {
  const config = configOf(s, image);
  return {
    Id: `sha256:${image.id}`,
    Digest: image.manifestDigest,
    RepoTags: image.names,
    RepoDigests: image.digests,
    Parent: '',
    Comment: config.history?.at(-1)?.comment ?? '',
    Created: image.created,
    Container: '',
    DockerVersion: '',
    Author: config.author ?? '',
    Config: config.config ?? {},
    Architecture: config.architecture,
    Os: config.os,
    ...(config.variant ? { Variant: config.variant } : {}),
    Size: image.size,
    VirtualSize: image.size,
    GraphDriver: {
      Name: s.driver.name,
      Data: { UpperDir: image.layers.length ? s.driver.layerPath(image.layers.at(-1)!) : '' },
    },
    RootFS: { Type: 'layers', Layers: config.rootfs.diff_ids },
    Metadata: { LastTagTime: image.added },
    ManifestType: image.manifestMediaType,
  };
}
