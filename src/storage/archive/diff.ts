/**
 * A container's changes against its image, for `diff` (the list) and
 * `commit` (the same changes as a layer tar with whiteouts).
 *
 * overlay: the container's upper directory holds exactly what changed. A
 * name there that exists in the image's merged lower layers is changed (C),
 * one that does not is added (A, with everything below it); a 0:0
 * character device is overlayfs's whiteout, a deletion (D); a directory
 * marked opaque replaced its lower namesake wholesale, so the lower names it
 * hides are deleted too. Lower layers are looked up as overlayfs does: top
 * first, a whiteout or a non-directory hides what is below it, an opaque
 * directory hides the layers below.
 *
 * vfs: the container's root is a full copy of the image's top layer, so the
 * two trees are compared, as docker's naive differ does: type, mode, owner,
 * device numbers, and for non-directories size and mtime (a copy keeps
 * mtimes to the nanosecond); a directory is changed when its own metadata
 * or anything below it is.
 *
 * The walk is two phases: the list of changes (cheap: names and lstat),
 * then the tar, which reads bodies as it streams.
 */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { sys } from '../../sys/native.ts';
import { HutchError, errnoCode } from '../../util/errors.ts';
import { TreePacker, fsPath } from './tar-writer.ts';
import type { ByteName, PackOptions } from './tar-writer.ts';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  kind: ChangeKind;
  /** Relative to the root, no leading `/` (ByteName). */
  path: ByteName;
  /** The file to archive (A and C). */
  source?: ByteName;
  /** overlay: the directory hides every lower entry of its name (write `.wh..wh..opq`). */
  opaque?: boolean;
  /** A deletion already covered by an opaque directory: listed, not archived. */
  covered?: boolean;
  /** C: the image's own file at this path (overlay: in the top-most lower layer that has it). */
  base?: ByteName;
}

export interface OverlayDiff {
  driver: 'overlay';
  /** The container's upper directory (may not exist: a container never started). */
  upper: string;
  /** The image's layer directories, top layer first. */
  lowers: string[];
  /** Rootless overlay marks opaque directories with user.overlay.opaque, rootful with trusted.overlay.opaque. */
  userxattr: boolean;
  /**
   * Written through fuse-overlayfs: deletions may also be `.wh.NAME` files,
   * and opaque directories carry user.fuseoverlayfs.opaque or a
   * `.wh..wh..opq` file; none of these names is a file of the container's.
   */
  fuse?: boolean;
}

export interface VfsDiff {
  driver: 'vfs';
  /** The container's root (may not exist). */
  root: string;
  /** The image's top layer: a full tree; undefined for an image without layers. */
  base: string | undefined;
}

export type DiffSource = OverlayDiff | VfsDiff;

function lstatMaybe(path: ByteName): BigIntStats | undefined {
  try {
    return lstatSync(fsPath(path), { bigint: true });
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

function join(dir: ByteName, name: ByteName): ByteName {
  return dir === '' ? name : `${dir}/${name}`;
}

function readdirSorted(path: ByteName): ByteName[] {
  return readdirSync(fsPath(path), { encoding: 'latin1' }).sort();
}

/** An extended attribute's value, undefined when absent (or unreadable: a name that is not UTF-8). */
function xattrOf(path: ByteName, name: string): Buffer | undefined {
  const bytes = fsPath(path);
  if (!isUtf8(bytes)) return undefined;
  try {
    return sys().lgetxattr(bytes.toString('utf8'), name) ?? undefined;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENODATA' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return undefined;
    throw e;
  }
}

function unsupportedOverlay(path: ByteName, what: string): HutchError {
  return new HutchError(
    'OVERLAY_FEATURE_UNSUPPORTED',
    `${path} in the container's writable layer uses overlayfs ${what}, which hutch cannot turn into a layer`,
    {
      hint: "Load the overlay module without it (redirect_dir=off, metacopy=off), or export the container's files with `hutch export`.",
    },
  );
}

const WH = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';

/** The merged view of an image's overlay layers, looked up as the kernel (or fuse-overlayfs) does. */
class Lowers {
  private readonly layers: string[];
  private readonly opaqueNames: string[];
  private readonly fuse: boolean;
  /** Relative directory -> the layer directories that make it up, top first ([] when not a directory below). */
  private readonly dirs = new Map<ByteName, ByteName[]>();

  constructor(layers: string[], userxattr: boolean, fuse: boolean) {
    this.layers = layers;
    this.fuse = fuse;
    const kernel = userxattr ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
    // fuse-overlayfs reads all three: the kernel's either way, and its own where trusted.* is refused.
    this.opaqueNames = fuse
      ? ['trusted.overlay.opaque', 'user.overlay.opaque', 'user.fuseoverlayfs.opaque']
      : [kernel];
  }

  isOpaque(path: ByteName): boolean {
    if (this.opaqueNames.some((n) => xattrOf(path, n)?.toString('latin1') === 'y')) return true;
    return this.fuse && lstatMaybe(`${path}/${WH_OPAQUE}`) !== undefined;
  }

  /** fuse-overlayfs: an empty `.wh.NAME` in layer directory `dir` hides NAME in the layers below. */
  whiteoutFile(dir: ByteName, name: ByteName): boolean {
    return this.fuse && lstatMaybe(`${dir}/${WH}${name}`) !== undefined;
  }

  /** Names that are markers, not files: fuse-overlayfs's `.wh.*` (the kernel's layers never hold them). */
  isMarker(name: ByteName): boolean {
    return this.fuse && name.startsWith(WH);
  }

  dirsOf(rel: ByteName): ByteName[] {
    if (rel === '') return this.layers.map((l) => l.replace(/\/+$/, ''));
    const hit = this.dirs.get(rel);
    if (hit !== undefined) return hit;
    const slash = rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : rel.slice(0, slash);
    const name = rel.slice(slash + 1);
    const out: ByteName[] = [];
    for (const d of this.dirsOf(parent)) {
      const p = `${d}/${name}`;
      const st = lstatMaybe(p);
      if (st === undefined) {
        if (this.whiteoutFile(d, name)) break;
        continue;
      }
      if (isWhiteout(st) || !st.isDirectory()) break; // hides everything below
      out.push(p);
      if (this.isOpaque(p)) break;
    }
    this.dirs.set(rel, out);
    return out;
  }

  /** Where `rel` is in the merged lower layers, if it is there. */
  find(rel: ByteName): ByteName | undefined {
    const slash = rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : rel.slice(0, slash);
    const name = rel.slice(slash + 1);
    for (const d of this.dirsOf(parent)) {
      const p = `${d}/${name}`;
      const st = lstatMaybe(p);
      if (st !== undefined) return isWhiteout(st) ? undefined : p;
      if (this.whiteoutFile(d, name)) return undefined;
    }
    return undefined;
  }

  /** The names the merged lower directory `rel` shows. */
  list(rel: ByteName): ByteName[] {
    const seen = new Set<ByteName>();
    const out: ByteName[] = [];
    for (const d of this.dirsOf(rel)) {
      const names = readdirSorted(d);
      for (const name of names) {
        if (this.isMarker(name)) continue;
        if (seen.has(name)) continue;
        seen.add(name);
        const st = lstatMaybe(`${d}/${name}`);
        if (st !== undefined && !isWhiteout(st)) out.push(name);
      }
      // Hidden from the layers below, after this layer's own names are in.
      for (const name of names) {
        if (name !== WH_OPAQUE && this.isMarker(name)) seen.add(name.slice(WH.length));
      }
    }
    return out.sort();
  }
}

function overlayChanges(src: OverlayDiff): Change[] {
  const top = src.upper.replace(/\/+$/, '');
  const root = lstatMaybe(top);
  if (root === undefined || !root.isDirectory()) return [];
  const lowers = new Lowers(src.lowers, src.userxattr, src.fuse === true);
  const out: Change[] = [];
  const walk = (rel: ByteName, below: boolean): void => {
    const names = readdirSorted(rel === '' ? top : `${top}/${rel}`);
    for (const name of names) {
      if (lowers.isMarker(name)) {
        // fuse-overlayfs's deletion as a file; a name made again after it is listed as itself.
        const victim = name.slice(WH.length);
        if (name === WH_OPAQUE || names.includes(victim)) continue;
        const path = join(rel, victim);
        if (below && lowers.find(path) !== undefined) out.push({ kind: 'D', path });
        continue;
      }
      const path = join(rel, name);
      const source = `${top}/${path}`;
      const st = lstatSync(fsPath(source), { bigint: true });
      const lower = below ? lowers.find(path) : undefined;
      const inLower = lower !== undefined;
      if (isWhiteout(st)) {
        // A whiteout over nothing (the lower file was itself deleted later) changes nothing.
        if (inLower) out.push({ kind: 'D', path });
        continue;
      }
      const kind: ChangeKind = inLower ? 'C' : 'A';
      const base = lower === undefined ? {} : { base: lower };
      if (!st.isDirectory()) {
        // Rootless mounts (userxattr) never make metacopy files or redirects; rootful ones may, by module options.
        if (!src.userxattr && st.isFile() && xattrOf(source, 'trusted.overlay.metacopy') !== undefined) {
          throw unsupportedOverlay(path, 'metacopy');
        }
        out.push({ kind, path, source, ...base });
        continue;
      }
      if (!src.userxattr && xattrOf(source, 'trusted.overlay.redirect') !== undefined) {
        throw unsupportedOverlay(path, 'redirect_dir');
      }
      const opaque = lowers.isOpaque(source);
      const change: Change = { kind, path, source, ...base };
      if (opaque && inLower) change.opaque = true;
      out.push(change);
      if (change.opaque) {
        const upperNames = new Set(readdirSorted(source).filter((n) => !lowers.isMarker(n)));
        for (const hidden of lowers.list(path)) {
          if (!upperNames.has(hidden)) out.push({ kind: 'D', path: join(path, hidden), covered: true });
        }
      }
      // Below a new or opaque directory nothing of the lower layers shows.
      walk(path, inLower && !opaque);
    }
  };
  walk('', true);
  return out;
}

function sameNode(a: BigIntStats, b: BigIntStats): boolean {
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.rdev !== b.rdev) return false;
  if (a.isDirectory()) return true;
  return a.size === b.size && a.mtimeNs === b.mtimeNs;
}

function vfsChanges(src: VfsDiff): Change[] {
  const top = src.root.replace(/\/+$/, '');
  const root = lstatMaybe(top);
  if (root === undefined || !root.isDirectory()) return [];
  const base = src.base?.replace(/\/+$/, '');
  const out: Change[] = [];
  /** Everything at and below `rel` is new. */
  const added = (rel: ByteName, source: ByteName, st: BigIntStats): void => {
    out.push({ kind: 'A', path: rel, source });
    if (!st.isDirectory()) return;
    for (const name of readdirSorted(source)) {
      const s = `${source}/${name}`;
      added(join(rel, name), s, lstatSync(fsPath(s), { bigint: true }));
    }
  };
  /** Compares directory `rel` in both trees; answers whether anything in it changed. */
  const walk = (rel: ByteName): boolean => {
    const mine = rel === '' ? top : `${top}/${rel}`;
    const theirs = rel === '' ? base! : `${base}/${rel}`;
    const names = [...new Set([...readdirSorted(mine), ...readdirSorted(theirs)])].sort();
    let changed = false;
    for (const name of names) {
      const path = join(rel, name);
      const a = lstatMaybe(`${mine}/${name}`);
      const b = lstatMaybe(`${theirs}/${name}`);
      if (a === undefined) {
        out.push({ kind: 'D', path });
        changed = true;
        continue;
      }
      const source = `${mine}/${name}`;
      if (b === undefined) {
        added(path, source, a);
        changed = true;
        continue;
      }
      const same = sameNode(a, b);
      if (a.isDirectory() && b.isDirectory()) {
        // The directory's entry goes before its content: keep its place, decide after the walk below.
        const at = out.length;
        out.push({ kind: 'C', path, source, base: `${theirs}/${name}` });
        const inner = walk(path);
        if (same && !inner) out.splice(at, 1);
        else changed = true;
        continue;
      }
      if (same && (!a.isSymbolicLink() || sameLink(source, `${theirs}/${name}`))) continue;
      changed = true;
      if (a.isDirectory()) {
        // A directory where the image had something else: replaced, all of its content is new.
        out.push({ kind: 'C', path, source, base: `${theirs}/${name}` });
        for (const child of readdirSorted(source)) {
          const s = `${source}/${child}`;
          added(join(path, child), s, lstatSync(fsPath(s), { bigint: true }));
        }
      } else out.push({ kind: 'C', path, source, base: `${theirs}/${name}` });
    }
    return changed;
  };
  if (base === undefined || lstatMaybe(base) === undefined) {
    for (const name of readdirSorted(top)) {
      const s = `${top}/${name}`;
      added(name, s, lstatSync(fsPath(s), { bigint: true }));
    }
  } else walk('');
  return out;
}

function sameLink(a: ByteName, b: ByteName): boolean {
  return readlinkSync(fsPath(a), { encoding: 'latin1' }) === readlinkSync(fsPath(b), { encoding: 'latin1' });
}

/** The changes, parents before children (the order a layer tar needs). */
export function changes(src: DiffSource): Change[] {
  return src.driver === 'overlay' ? overlayChanges(src) : vfsChanges(src);
}

/** By path bytes, as docker sorts `docker diff`'s lines. */
export function sortedForDisplay(list: readonly Change[]): Change[] {
  return [...list].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/**
 * The changes as a layer tar: added and changed files whole, deletions as
 * `.wh.NAME`, opaque directories followed by `.wh..wh..opq`. The packer
 * counts entries, so the caller can tell an empty layer from a real one.
 */
export function* changesTar(list: readonly Change[], packer: TreePacker): Generator<Buffer> {
  for (const c of list) {
    if (c.kind === 'D') {
      if (c.covered) continue;
      const slash = c.path.lastIndexOf('/');
      const parent = slash < 0 ? '' : c.path.slice(0, slash + 1);
      yield* packer.marker(`${parent}.wh.${c.path.slice(slash + 1)}`);
      continue;
    }
    yield* packer.entry(c.source!, c.path);
    if (c.opaque) yield* packer.marker(`${c.path}/.wh..wh..opq`);
  }
  yield* packer.end();
}

/** A new packer for a layer: whiteout-like names refused, since they would read back as deletions. */
export function layerPacker(opts: Omit<PackOptions, 'refuseWhiteoutNames'> = {}): TreePacker {
  return new TreePacker({ ...opts, refuseWhiteoutNames: true });
}
