/**
 * `hutch diff`: what a container changed in its root filesystem against its
 * image, as docker lists it (`A`dded, `C`hanged, `D`eleted, sorted by path).
 * Read from the storage driver's files directly, so it works on stopped
 * containers too and never mounts anything.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { changes, sortedForDisplay } from '../../storage/archive/diff.ts';
import type { Change, DiffSource } from '../../storage/archive/diff.ts';
import { fsPath } from '../../storage/archive/tar-writer.ts';
import { rootLayerOf } from '../../runtime/containers/types.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { HutchError } from '../../util/errors.ts';
import type { Context } from '../context.ts';
import { openContainers } from './open.ts';
import type { Containers } from './open.ts';

/**
 * Mount points the runtime makes in a container's root when the image
 * lacks them (as podman's diff, which leaves the same ones out): they are
 * the engine's doing, not the container's, and docker keeps them in a
 * layer of its own below the container's.
 */
const RUNTIME_MADE = new Set([
  'dev',
  'etc/hostname',
  'etc/hosts',
  'etc/resolv.conf',
  'proc',
  'run',
  'run/.containerenv',
  'sys',
  'etc/mtab',
]);

/** Where the container's changes are, for its storage driver. */
export function diffSource(c: Containers, rec: ContainerRecord): DiffSource {
  const home = join(c.ctx.paths.root, 'storage', rec.driver, 'containers', rec.id);
  const driver = c.images.driver;
  if (rec.driver !== driver.name) {
    throw new HutchError(
      'BAD_DRIVER',
      `container ${rec.name} was made with the ${rec.driver} storage driver, this store uses ${driver.name}`,
      { hint: 'Use the store the container was made in (--root).' },
    );
  }
  if (rec.driver === 'overlay' || rec.driver === 'fuse-overlayfs') {
    const image = c.images.db.read().images.find((i) => i.id === rec.config.imageId);
    // A shifted copy is the whole image in one layer.
    const layers = rec.shiftedLayer ? [rec.shiftedLayer] : (image?.layers ?? (rec.topLayer ? undefined : []));
    if (layers === undefined) {
      throw new HutchError(
        'NO_SUCH_IMAGE',
        `the image of container ${rec.name} (${rec.config.image}) is gone`,
        {
          hint: 'Its changes cannot be told apart from the image without it: pull the image again.',
        },
      );
    }
    return {
      driver: 'overlay',
      upper: join(home, 'diff'),
      lowers: [...layers].reverse().map((id) => driver.layerPath(id)),
      userxattr: c.ctx.ident.rootless,
      fuse: rec.driver === 'fuse-overlayfs',
    };
  }
  return {
    driver: 'vfs',
    root: join(home, 'rootfs'),
    base: rec.topLayer ? driver.layerPath(rootLayerOf(rec)) : undefined,
  };
}

/**
 * Whether a change is only the runtime's mount point: an empty file or
 * directory the image did not have, at one of the paths above.
 */
export function runtimeMade(ch: Change): boolean {
  if (ch.kind !== 'A' || !RUNTIME_MADE.has(ch.path) || ch.source === undefined) return false;
  const st = lstatSync(fsPath(ch.source));
  if (st.isFile()) return st.size === 0;
  return st.isDirectory() && readdirSync(fsPath(ch.source)).length === 0;
}

function sameOwnerAndMode(a: string, b: string): boolean {
  const x = lstatSync(fsPath(a));
  const y = lstatSync(fsPath(b));
  return x.mode === y.mode && x.uid === y.uid && x.gid === y.gid;
}

/**
 * The changes without the runtime's own mount points, nor the directories
 * listed only because those were made in them (overlay copies `/etc` up to
 * make `/etc/hosts`; docker's init layer hides the same).
 */
export function containerChanges(c: Containers, rec: ContainerRecord): Change[] {
  const list = changes(diffSource(c, rec));
  const drop = new Set(list.filter(runtimeMade));
  if (drop.size === 0) return list;
  const parents = new Set([...drop].map((ch) => ch.path.slice(0, Math.max(0, ch.path.lastIndexOf('/')))));
  for (const ch of list) {
    if (ch.kind !== 'C' || !parents.has(ch.path) || ch.base === undefined || ch.source === undefined)
      continue;
    const below = `${ch.path}/`;
    const kept = list.some((o) => !drop.has(o) && o !== ch && o.path.startsWith(below));
    if (!kept && sameOwnerAndMode(ch.source, ch.base)) drop.add(ch);
  }
  return list.filter((ch) => !drop.has(ch));
}

export function diffContainer(ctx: Context, ref: string): Change[] {
  const c = openContainers(ctx);
  const rec = c.store.get(ref);
  return sortedForDisplay(containerChanges(c, rec));
}
