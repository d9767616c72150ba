/**
 * Shifted copies of images, for containers with their own ID mapping
 * (`--userns keep-id`, `--userns nomap`). Such a container sees its root's
 * files through its mapping, so an image file owned by root must be owned
 * here by the id the container's root maps to. The kernel cannot map an
 * overlay's layers for an unprivileged user (idmapped mounts of the host's
 * filesystems need host root), so hutch does what podman does on kernel
 * overlay: one copy of the image with every owner translated, made once per
 * image and mapping and shared by every container that uses them.
 *
 * A copy is a layer named TOP-KEY (the image's top layer and a hash of the
 * mapping), without a parent. It lives as long as its image's top layer:
 * removing the image removes it (`removeShiftedOf`), and `system check`
 * reports a copy whose image layer is gone.
 */
import { createHash } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { lockFileAsync } from '../sys/lock.ts';
import { mappingKey, ownerMapper } from '../util/idmap.ts';
import type { IdMappings } from '../util/idmap.ts';
import { TreePacker, toBytes } from './archive/tar-writer.ts';
import type { LayerDriver } from './types.ts';

export function shiftedLayerId(top: string, maps: IdMappings): string {
  return `${top}-${createHash('sha256').update(mappingKey(maps)).digest('hex').slice(0, 16)}`;
}

/** The image layer a shifted copy was made from. */
export function shiftedSource(id: string): string {
  return id.slice(0, 64);
}

/**
 * The shifted copy of the image with top layer `top` for `maps`, made now
 * if it does not exist yet. Concurrent commands wait on `lockDir`'s lock for
 * it and make it once; the copy becomes visible only when complete.
 */
export async function ensureShiftedLayer(
  driver: LayerDriver,
  top: string,
  maps: IdMappings,
  lockDir: string,
): Promise<string> {
  const id = shiftedLayerId(top, maps);
  if (driver.hasLayer(id)) return id;
  const lock = await lockFileAsync(join(lockDir, `shift-${id}.lock`));
  try {
    if (driver.hasLayer(id)) return id;
    const view = driver.viewImage(top);
    try {
      const toNamespace = ownerMapper(maps, 'to-namespace');
      const packer = new TreePacker({ mapOwner: toNamespace });
      const root = lstatSync(view.path);
      const tar = function* (): Generator<Buffer> {
        yield* packer.tree(toBytes(view.path), undefined);
        yield* packer.end();
      };
      // node:stream on first use: every `run` bundles this, few make a shifted copy.
      const { Readable } = process.getBuiltinModule('node:stream');
      await driver.createLayer(id, undefined, Readable.from(tar(), { objectMode: false }), {
        rootOwner: toNamespace(root.uid, root.gid),
      });
    } finally {
      view.release();
    }
    return id;
  } finally {
    lock.release();
  }
}

/** Removes every shifted copy made from one of the image layers `tops` (their images are being removed). */
export function removeShiftedOf(driver: LayerDriver, tops: readonly string[]): void {
  if (tops.length === 0) return;
  const gone = new Set(tops);
  for (const id of driver.listLayers('shifted')) if (gone.has(shiftedSource(id))) driver.removeLayer(id);
}
