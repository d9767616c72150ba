/**
 * Volumes, binds and tmpfs for a container: parsed from -v, --mount and
 * --tmpfs at create time (so a bad flag fails before anything is made), and
 * turned into OCI mounts at each start, when named volumes are created on
 * first use and filled from the image as docker does.
 */
import { existsSync, lchownSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { isAbsolute, join, posix, resolve } from 'node:path';
import { HutchError } from '../../util/errors.ts';
import { resolveInRoot } from '../in-root.ts';
import type { OciMount } from '../spec.ts';
import { mountOf } from '../volumes.ts';
import type { VolumeStore } from '../volumes.ts';
import type { MountRecord } from './types.ts';

const BIND_PROPAGATION = new Set(['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate']);
const VOLUME_FLAGS = new Set(['ro', 'rw', 'U', 'z', 'Z', 'nocopy', 'copy', ...BIND_PROPAGATION]);

function badMount(flag: string, value: string, why: string): HutchError {
  return new HutchError('BAD_MOUNT', `${flag} ${value}: ${why}`, {
    hint:
      flag === '--mount'
        ? 'Use --mount type=bind|volume|tmpfs,source=...,target=...[,readonly].'
        : 'Use -v /host/dir:/container/dir[:ro|rw|U|z|Z], -v NAME:/dir, or -v /dir for an anonymous volume.',
  });
}

function containerPath(flag: string, value: string, p: string): string {
  if (!p || !p.startsWith('/')) throw badMount(flag, value, `the container path "${p}" must be absolute`);
  const clean = posix.normalize(p);
  if (clean === '/') throw badMount(flag, value, 'cannot mount over the container\'s root "/"');
  return clean.replace(/\/$/, '');
}

/** -v SRC:DST[:OPTS] | -v NAME:DST[:OPTS] | -v DST */
export function parseVolumeFlag(value: string, cwd = process.cwd()): MountRecord {
  const parts = value.split(':');
  if (parts.length > 3 || parts.some((p) => p === ''))
    throw badMount('-v', value, 'expected SRC:DST[:OPTIONS]');
  if (parts.length === 1) {
    return {
      type: 'volume',
      source: '',
      name: '',
      destination: containerPath('-v', value, parts[0]!),
      readOnly: false,
      options: [],
    };
  }
  const [src, dst, opts] = parts as [string, string, string | undefined];
  const options = opts ? opts.split(',') : [];
  for (const o of options) {
    if (!VOLUME_FLAGS.has(o))
      throw badMount('-v', value, `unknown option "${o}" (known: ${[...VOLUME_FLAGS].join(', ')})`);
  }
  if (options.includes('ro') && options.includes('rw')) throw badMount('-v', value, '"ro" and "rw" together');
  const destination = containerPath('-v', value, dst);
  const readOnly = options.includes('ro');
  if (src.startsWith('/') || src.startsWith('.') || src.startsWith('~')) {
    const source = src.startsWith('~') ? join(process.env.HOME ?? '/', src.slice(1)) : resolve(cwd, src);
    return { type: 'bind', source, destination, readOnly, options };
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(src)) {
    throw badMount('-v', value, `"${src}" is neither an absolute host path nor a valid volume name`);
  }
  return { type: 'volume', source: src, name: src, destination, readOnly, options };
}

/** --mount type=...,source=...,target=...,readonly,... (docker's CSV form) */
export function parseMountFlag(value: string, cwd = process.cwd()): MountRecord {
  const kv = new Map<string, string>();
  for (const field of value.split(',')) {
    if (!field) continue;
    const eq = field.indexOf('=');
    kv.set((eq < 0 ? field : field.slice(0, eq)).toLowerCase(), eq < 0 ? 'true' : field.slice(eq + 1));
  }
  const type = kv.get('type') ?? 'volume';
  const source = kv.get('source') ?? kv.get('src') ?? '';
  const target = kv.get('target') ?? kv.get('destination') ?? kv.get('dst') ?? '';
  if (!target) throw badMount('--mount', value, 'a target= is required');
  const destination = containerPath('--mount', value, target);
  const ro = kv.get('readonly') ?? kv.get('ro');
  const readOnly = ro !== undefined && ro !== 'false' && ro !== '0';
  const options: string[] = [];
  const known = new Set(['type', 'source', 'src', 'target', 'destination', 'dst', 'readonly', 'ro']);
  const take = (key: string, fn: (v: string) => void): void => {
    const v = kv.get(key);
    known.add(key);
    if (v !== undefined) fn(v);
  };
  if (type === 'bind') {
    if (!source) throw badMount('--mount', value, 'a bind mount needs source=');
    take('bind-propagation', (v) => {
      if (!BIND_PROPAGATION.has(v)) throw badMount('--mount', value, `bad bind-propagation "${v}"`);
      options.push(v);
    });
    take('u', (v) => v !== 'false' && options.push('U'));
    take('relabel', () => {});
    take('bind-nonrecursive', (v) => v !== 'false' && options.push('norbind'));
    const abs = isAbsolute(source) ? source : resolve(cwd, source);
    if (!existsSync(abs)) throw badMount('--mount', value, `the bind source path does not exist: ${abs}`);
    checkUnknown(kv, known, value);
    return { type: 'bind', source: abs, destination, readOnly, options };
  }
  if (type === 'volume') {
    take('volume-nocopy', (v) => v !== 'false' && options.push('nocopy'));
    take('u', (v) => v !== 'false' && options.push('U'));
    if (source && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(source))
      throw badMount('--mount', value, `bad volume name "${source}"`);
    checkUnknown(kv, known, value);
    return { type: 'volume', source, name: source, destination, readOnly, options };
  }
  if (type === 'tmpfs') {
    if (source) throw badMount('--mount', value, 'a tmpfs mount takes no source');
    take('tmpfs-size', (v) => options.push(`size=${v}`));
    take('tmpfs-mode', (v) => {
      if (!/^[0-7]{1,4}$/.test(v)) throw badMount('--mount', value, `bad tmpfs-mode "${v}"`);
      options.push(`mode=${v}`);
    });
    checkUnknown(kv, known, value);
    return { type: 'tmpfs', source: 'tmpfs', destination, readOnly, options };
  }
  throw badMount('--mount', value, `unknown type "${type}" (bind, volume or tmpfs)`);
}

function checkUnknown(kv: Map<string, string>, known: Set<string>, value: string): void {
  for (const k of kv.keys()) if (!known.has(k)) throw badMount('--mount', value, `unknown field "${k}"`);
}

/** --tmpfs /dir[:size=64m,mode=1777,...] */
export function parseTmpfsFlag(value: string): MountRecord {
  const colon = value.indexOf(':');
  const dst = colon < 0 ? value : value.slice(0, colon);
  const options =
    colon < 0
      ? []
      : value
          .slice(colon + 1)
          .split(',')
          .filter(Boolean);
  return {
    type: 'tmpfs',
    source: 'tmpfs',
    destination: containerPath('--tmpfs', value, dst),
    readOnly: options.includes('ro'),
    options,
  };
}

/** Refuses two mounts at one place, as docker does ("Duplicate mount point"). */
export function checkDuplicates(mounts: readonly MountRecord[]): void {
  const seen = new Set<string>();
  for (const m of mounts) {
    if (seen.has(m.destination)) {
      throw new HutchError('BAD_MOUNT', `duplicate mount point: ${m.destination}`, {
        hint: 'Mount one thing at each container path.',
      });
    }
    seen.add(m.destination);
  }
}

/** chown -R inside the user namespace (for :U), without following symlinks. */
function chownTree(path: string, uid: number, gid: number): void {
  lchownSync(path, uid, gid);
  const st = lstatSync(path);
  if (!st.isDirectory()) return;
  for (const name of readdirSync(path)) chownTree(join(path, name), uid, gid);
}

export interface StartMountsInput {
  mounts: MountRecord[];
  rootfs: string;
  volumes: VolumeStore;
  uid: number;
  gid: number;
}

/**
 * The OCI mounts for a start: named volumes made on first use and filled
 * from the image, missing bind sources of -v made (docker's behaviour),
 * :U applied. Anonymous volumes got their names at create time.
 */
export function startMounts(input: StartMountsInput): OciMount[] {
  const out: OciMount[] = [];
  for (const m of input.mounts) {
    const mode = m.readOnly ? 'ro' : 'rw';
    const propagation = m.options.filter((o) => BIND_PROPAGATION.has(o));
    if (m.type === 'tmpfs') {
      const opts = m.options.filter((o) => o !== 'ro' && o !== 'rw');
      out.push({
        destination: m.destination,
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', mode, ...opts],
      });
      continue;
    }
    let source = m.source;
    let recursive = !m.options.includes('norbind');
    let extra: string[] = [];
    if (m.type === 'volume') {
      const name = m.name!;
      const v = input.volumes.exists(name) ? input.volumes.get(name) : input.volumes.create({ name });
      const copySource = m.options.includes('nocopy')
        ? undefined
        : resolveInRoot(input.rootfs, m.destination);
      input.volumes.copyUpIfFirstUse(name, copySource);
      const vm = mountOf(v);
      if (vm.type === 'tmpfs') {
        out.push({
          destination: m.destination,
          type: 'tmpfs',
          source: 'tmpfs',
          options: ['nosuid', 'nodev', mode, ...vm.options],
        });
        continue;
      }
      source = vm.source;
      recursive = vm.recursive;
      extra = vm.options.filter((o) => o !== 'ro' && o !== 'rw');
      if (vm.options.includes('ro') && !m.readOnly) extra.push('ro');
    } else if (!existsSync(source)) {
      mkdirSync(source, { recursive: true, mode: 0o755 });
    }
    if (m.options.includes('U')) chownTree(source, input.uid, input.gid);
    out.push({
      destination: m.destination,
      type: 'bind',
      source,
      options: [recursive ? 'rbind' : 'bind', mode, ...propagation, ...extra],
    });
  }
  return out;
}
