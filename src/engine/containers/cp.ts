/**
 * `hutch cp`: files between a container and the host, with docker's rules:
 *
 *   SRC a file:  DEST missing -> that file is made (DEST ending in `/` is an
 *                error: the directory must exist); DEST a file -> overwritten;
 *                DEST a directory -> the file goes into it under its name.
 *   SRC a dir:   DEST missing -> made, with SRC's content; DEST a file ->
 *                error; DEST a directory -> SRC goes into it, or with
 *                `SRC/.` SRC's content does.
 *   `-` as SRC:  a tar on stdin, extracted into DEST (a directory);
 *   `-` as DEST: SRC as a tar on stdout.
 *
 * Container paths are resolved in the container's root as the container
 * sees them: symbolic links re-rooted there, `..` stopping at its `/`
 * (docker's scoped resolution). Whichever side is the source becomes a tar
 * stream of hutch's own making (or the user's, rewritten), and the
 * destination is written by the layer extractor, which never writes outside
 * the directory it is given: neither a hostile image (links to the host's
 * files) nor a hostile tar (`../` names) can lead a copy out.
 *
 * Ownership: files copied into a container belong to its root (0:0), ones
 * copied out to the user, unless -a keeps the source's ids. A running
 * container is paused while files are copied, where the cgroup freezer is
 * available, so that none of its processes swaps a directory for a link
 * halfway through. Its volumes and bind mounts are not seen: only its root
 * filesystem (what `export` writes).
 */
import { realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { basename, dirname, posix } from 'node:path';
import { Readable } from 'node:stream';
import { resolveInRoot } from '../../runtime/in-root.ts';
import { TreePacker, fromBytes, rebaseTar, toBytes } from '../../storage/archive/tar-writer.ts';
import type { PackOptions } from '../../storage/archive/tar-writer.ts';
import { ownerMapper } from '../../util/idmap.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import type { ByteName } from '../../storage/archive/tar-writer.ts';
import { applyLayer } from '../../storage/extract/index.ts';
import { namespaceIdLimits } from '../../sys/identity.ts';
import { HutchError, errnoCode } from '../../util/errors.ts';
import { lstatIfExists } from '../../util/fs-atomic.ts';
import { log } from '../../util/log.ts';
import type { Context } from '../context.ts';
import { pausedDuring, refuseTerminal, withContainerRoot, writeAll } from './export.ts';
import type { RootAccess } from './export.ts';
import { openContainers } from './open.ts';
import type { Containers } from './open.ts';

export interface CpOptions {
  /** -a: keep the source's uid and gid. */
  archive?: boolean;
  /** -L: follow a symbolic link given as the source. */
  followLink?: boolean;
}

export interface CpArg {
  container: string | undefined;
  path: string;
}

/** docker's split: `NAME:PATH` is a container path unless the argument is absolute or starts with `.`. */
export function splitCpArg(arg: string): CpArg {
  if (arg.startsWith('/')) return { container: undefined, path: arg };
  const colon = arg.indexOf(':');
  if (colon < 0 || arg.startsWith('.')) return { container: undefined, path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

interface PathSpec {
  /** Absolute and lexically clean, `/` for the root. */
  clean: string;
  /** Ended in `/` or `/.`: must be a directory. */
  dirOnly: boolean;
  /** Ended in `/.`: the directory's content, not the directory. */
  contents: boolean;
}

function spec(path: string, base: string): PathSpec {
  const contents = path === '.' || path.endsWith('/.');
  const dirOnly = contents || path.endsWith('/');
  // Lexical cleaning first, as docker does: `..` never climbs above `/`.
  const clean = posix.resolve(base, path);
  return { clean, dirOnly, contents };
}

function bad(code: string, message: string, hint?: string): HutchError {
  return new HutchError(code, message, hint ? { hint } : {});
}

function statMaybe(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined;
    throw e;
  }
}

/** A source resolved: the file to read, its stat, the name it is copied under. */
interface Source {
  host: string;
  st: Stats;
  /** Its own name (for DEST directories); '' for a root. */
  base: string;
  /** Copy the directory's content rather than the directory. */
  contents: boolean;
}

function containerSource(root: string, name: string, path: string, follow: boolean): Source {
  const p = spec(path, '/');
  let host: string;
  if (p.clean === '/') host = root;
  else if (p.dirOnly || follow) host = resolveInRoot(root, p.clean);
  else {
    const parent = resolveInRoot(root, posix.dirname(p.clean));
    host = `${parent === '/' ? '' : parent}/${posix.basename(p.clean)}`;
  }
  const st = lstatIfExists(host);
  if (st === undefined) {
    throw bad(
      'NO_SUCH_PATH',
      `could not find the file ${path} in container ${name}`,
      'Check the path with `hutch exec` or `hutch export`.',
    );
  }
  if (p.dirOnly && !st.isDirectory())
    throw bad('NOT_A_DIRECTORY', `${path} in container ${name} is not a directory`);
  return { host, st, base: posix.basename(p.clean), contents: p.contents || p.clean === '/' };
}

function hostSource(path: string, follow: boolean): Source {
  const p = spec(path, process.cwd());
  const st = p.dirOnly || follow ? statMaybe(p.clean) : lstatIfExists(p.clean);
  if (st === undefined) throw bad('NO_SUCH_PATH', `${path}: no such file or directory`);
  if (p.dirOnly && !st.isDirectory()) throw bad('NOT_A_DIRECTORY', `${path} is not a directory`);
  const host = p.dirOnly || follow ? realpathSync(p.clean) : p.clean;
  return { host, st, base: basename(p.clean), contents: p.contents || p.clean === '/' };
}

/** Where a copy lands: an existing directory, and the name under it (undefined: the source's content goes there). */
interface Target {
  dir: string;
  name: string | undefined;
}

/**
 * docker's destination rules, given how DEST looks: `st` (links followed)
 * and the real path of DEST and of its parent.
 */
function target(
  dest: string,
  destSpec: PathSpec,
  st: Stats | undefined,
  real: () => string,
  parentReal: () => string | undefined,
  src: Source,
  /** The name a missing DEST is made under (a container path's last link resolved). */
  missingName: string = basename(destSpec.clean),
): Target {
  const srcDir = src.st.isDirectory();
  if (st?.isDirectory()) return { dir: real(), name: src.contents ? undefined : src.base || undefined };
  if (st !== undefined) {
    if (srcDir)
      throw bad('CP_DIR_TO_FILE', `cannot copy a directory to a file: ${dest} exists and is not a directory`);
    if (destSpec.dirOnly) throw bad('NOT_A_DIRECTORY', `${dest} is not a directory`);
    const r = real();
    return { dir: dirname(r), name: basename(r) };
  }
  if (destSpec.dirOnly && !srcDir) {
    throw bad(
      'NO_SUCH_DIRECTORY',
      `the destination directory ${dest} must exist`,
      'Make the directory first, or leave out the trailing slash to copy to a new file.',
    );
  }
  const parent = parentReal();
  if (parent === undefined) {
    throw bad(
      'NO_SUCH_DIRECTORY',
      `the parent directory of ${dest} does not exist`,
      'Make it first: cp creates only the last component.',
    );
  }
  return { dir: parent, name: missingName };
}

/** docker refuses to replace a directory with a non-directory and the reverse, at the top. */
function checkOverwrite(t: Target, src: Source, shown: string): void {
  if (t.name === undefined) return;
  const there = lstatIfExists(`${t.dir === '/' ? '' : t.dir}/${t.name}`);
  if (there === undefined) return;
  const srcDir = src.st.isDirectory();
  if (there.isDirectory() && !srcDir) {
    throw bad('CP_OVERWRITE', `cannot overwrite directory ${shown} with non-directory ${src.base}`);
  }
  if (!there.isDirectory() && srcDir) {
    throw bad('CP_OVERWRITE', `cannot overwrite non-directory ${shown} with directory ${src.base}`);
  }
}

/** The source as tar members: `name` (or its content, when undefined), below `prefix`. */
function* sourceTar(
  packer: TreePacker,
  src: Source,
  name: string | undefined,
  prefix: ByteName,
): Generator<Buffer> {
  const host = toBytes(src.host);
  const under = (n: ByteName): ByteName => (prefix === '' ? n : `${prefix}/${n}`);
  if (name !== undefined) {
    yield* packer.tree(host, under(toBytes(name)));
  } else if (src.st.isDirectory()) {
    for (const child of packer.children(host))
      yield* packer.tree(`${host === '/' ? '' : host}/${child}`, under(child));
  }
  yield* packer.end();
}

function extractOptions(c: Containers): Parameters<typeof applyLayer>[2] {
  const rootless = c.ctx.ident.rootless;
  return { whiteouts: 'apply', userxattr: rootless, canMknod: !rootless, ...namespaceIdLimits() };
}

function unsafeName(name: string): HutchError {
  return new HutchError(
    'CP_UNSAFE_PATH',
    `the tar entry ${JSON.stringify(name)} climbs out of the destination`,
    {
      hint: 'Refusing to write outside the destination: fix the archive.',
    },
  );
}

async function extract(
  c: Containers,
  tar: Iterable<Buffer> | AsyncIterable<Buffer>,
  dir: string,
): Promise<void> {
  const r = await applyLayer(
    Readable.from(tar, { objectMode: false, highWaterMark: 1 << 20 }),
    dir,
    extractOptions(c),
  );
  for (const w of r.warnings) log.warn(w);
}

/** A host path below the container's root, relative to it ('' for the root itself). */
function relativeTo(root: string, host: string): ByteName {
  if (host === root) return '';
  if (!host.startsWith(`${root}/`)) {
    throw new HutchError('PATH_ESCAPED', `${host} is outside the container's root`, {
      hint: 'This is a bug in hutch: report it.',
    });
  }
  return toBytes(host.slice(root.length + 1));
}

async function fromContainer(
  c: Containers,
  ref: string,
  srcPath: string,
  dest: string,
  opts: CpOptions,
): Promise<void> {
  if (dest === '-') refuseTerminal('archive');
  await withContainerRoot(c, ref, async (access: RootAccess) => {
    const { root, rec } = access;
    await pausedDuring(
      c,
      access,
      'cp',
      async () => {
        warnIfMounted(rec, srcPath);
        const src = containerSource(root, rec.name, srcPath, opts.followLink === true);
        if (dest === '-') {
          // The archive as the container has it: its owners (as docker's).
          const packer = new TreePacker({ ...ownersOut(rec, true), confine: toBytes(root), onSkip: skipped });
          await writeAll(sourceTar(packer, src, src.contents ? undefined : src.base, ''), process.stdout);
          return;
        }
        const d = spec(dest, process.cwd());
        const t = target(
          dest,
          d,
          statMaybe(d.clean),
          () => realpathSync(d.clean),
          () => (statMaybe(dirname(d.clean))?.isDirectory() ? realpathSync(dirname(d.clean)) : undefined),
          src,
        );
        checkOverwrite(t, src, dest);
        const packer = new TreePacker({
          ...ownersOut(rec, opts.archive === true),
          refuseWhiteoutNames: true,
          confine: toBytes(root),
          onSkip: skipped,
        });
        await extract(c, sourceTar(packer, src, t.name, ''), t.dir);
      },
      true,
    );
  });
}

/**
 * A path under one of the container's mounts is the root filesystem's
 * hidden copy, not what the container sees there (docker cp has the same
 * limit): say so rather than let the copy look lost.
 */
function warnIfMounted(rec: RootAccess['rec'], path: string): void {
  const clean = posix.resolve('/', path);
  const mounts = [...rec.hostConfig.mounts.map((m) => m.destination), ...Object.keys(rec.hostConfig.tmpfs)];
  const hit = mounts.find((m) => clean === m || clean.startsWith(m.endsWith('/') ? m : `${m}/`));
  if (hit !== undefined) {
    log.warn(
      `${hit} is a mount in container ${rec.name}: cp reaches the root filesystem below it, not the mount; use \`hutch exec\` with tar for its files`,
    );
  }
}

type Owners = Pick<PackOptions, 'owner' | 'mapOwner'>;

/**
 * Owners of what leaves the container: its files' own (`keep`, as the
 * container sees them) or root's. A container with its own ID mapping
 * sees its files' owners through it.
 */
function ownersOut(rec: ContainerRecord, keep: boolean): Owners {
  if (!keep) return { owner: { uid: 0, gid: 0 } };
  return rec.idMappings ? { mapOwner: ownerMapper(rec.idMappings, 'to-container') } : {};
}

/** Owners of what goes in: the source's (`keep`, `-a`) or the container root's, as the container will see them. */
function ownersIn(rec: ContainerRecord, keep: boolean): Owners {
  if (!rec.idMappings) return keep ? {} : { owner: { uid: 0, gid: 0 } };
  const toNamespace = ownerMapper(rec.idMappings, 'to-namespace');
  return keep ? { mapOwner: toNamespace } : { owner: toNamespace(0, 0) };
}

function skipped(name: ByteName, why: string): void {
  log.warn(`${fromBytes(name)} was not copied: ${why}`);
}

async function toContainer(
  c: Containers,
  ref: string,
  srcPath: string,
  destPath: string,
  opts: CpOptions,
): Promise<void> {
  const fromStdin = srcPath === '-';
  if (fromStdin && process.getBuiltinModule('node:tty').isatty(0)) {
    throw new HutchError('STDIN_IS_TERMINAL', 'cp from stdin (-), but stdin is a terminal', {
      hint: 'Pipe a tar archive in: tar -c FILES | hutch cp - CONTAINER:/DIR',
    });
  }
  // The source is checked before the container's root is touched.
  const src = fromStdin ? undefined : hostSource(srcPath, opts.followLink === true);
  await withContainerRoot(c, ref, async (access: RootAccess) => {
    const { root, rec } = access;
    warnIfMounted(rec, destPath);
    const d = spec(destPath, '/');
    const destHost = d.clean === '/' ? root : resolveInRoot(root, d.clean);
    const st = lstatIfExists(destHost);
    const owners = ownersIn(rec, opts.archive === true);
    if (src === undefined) {
      if (!st?.isDirectory()) {
        throw bad(
          'NOT_A_DIRECTORY',
          `the destination ${destPath} in container ${rec.name} must be an existing directory`,
          'A tar stream is extracted into a directory.',
        );
      }
      const prefix = relativeTo(root, destHost);
      const tar = rebaseTar(process.stdin, { prefix, ...owners, unsafe: unsafeName });
      await pausedDuring(c, access, 'cp', () => extract(c, tar, root), true);
      return;
    }
    const shown = `${rec.name}:${destPath}`;
    const t = target(
      shown,
      d,
      st,
      () => destHost,
      () => {
        const parent = dirname(destHost);
        return parent.length >= root.length && lstatIfExists(parent)?.isDirectory() ? parent : undefined;
      },
      src,
      basename(destHost),
    );
    checkOverwrite(t, src, shown);
    const prefix = relativeTo(root, t.dir);
    const packer = new TreePacker({ ...owners, refuseWhiteoutNames: true, onSkip: skipped });
    await pausedDuring(c, access, 'cp', () => extract(c, sourceTar(packer, src, t.name, prefix), root), true);
  });
}

export async function copyFiles(ctx: Context, from: string, to: string, opts: CpOptions = {}): Promise<void> {
  const s = from === '-' ? { container: undefined, path: '-' } : splitCpArg(from);
  const d = to === '-' ? { container: undefined, path: '-' } : splitCpArg(to);
  if (s.container !== undefined && d.container !== undefined) {
    throw bad(
      'CP_BOTH_CONTAINERS',
      'copying between containers is not supported',
      'Copy to the host first, then into the other container.',
    );
  }
  if (s.container === undefined && d.container === undefined) {
    throw bad(
      'CP_NO_CONTAINER',
      'must specify at least one container source',
      'Name the container side as CONTAINER:PATH.',
    );
  }
  if (s.container === '' || d.container === '') throw bad('NO_SUCH_CONTAINER', 'the container name is empty');
  const path = s.container !== undefined ? s.path : d.path;
  if (path === '')
    throw bad('BAD_PATH', 'the container path is empty', 'Give CONTAINER:PATH, e.g. mybox:/etc/hosts.');
  if (s.container === undefined && s.path === '-' && d.path === '-')
    throw bad('BAD_PATH', 'only one side can be -');
  const c = openContainers(ctx);
  if (s.container !== undefined) await fromContainer(c, s.container, s.path, d.path, opts);
  else await toContainer(c, d.container!, s.path, d.path, opts);
}
