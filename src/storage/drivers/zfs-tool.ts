/**
 * The ZFS operations the zfs driver needs, done by the `zfs` tool (OpenZFS
 * or Debian's zfs-fuse). A spawn costs a few milliseconds and a clone some
 * 13 ms on zfs-fuse: a handful per layer and one per container root, so no
 * library binding of our own is worth it.
 *
 * Only root may create, clone, mount and destroy datasets: ZFS delegation
 * (`zfs allow`) does not cover mounting for an unprivileged user on Linux,
 * which is why the driver is rootful only.
 *
 * What zfs-fuse (pool version 23) lacks and the driver avoids: the `clones`
 * property (dependents are found from every dataset's `origin`), lz4
 * compression, xattr=sa and acltype; and `zfs rename` of a mounted dataset
 * fails "dataset is busy", so a layer is unmounted before its rename.
 */
import { HutchError } from '../../util/errors.ts';
import { which } from '../../util/which.ts';

/** Where `zfs` is: users' PATHs often lack the sbin directories. */
/** A user property (ZFS takes any name with a colon), set on removed layers kept for their clones. */
export const REMOVED_PROP = 'hutch:removed';

export function zfsTool(): string | undefined {
  return which('zfs') ?? ['/usr/sbin/zfs', '/sbin/zfs'].find((p) => which(p) !== undefined);
}

function tool(): string {
  const found = zfsTool();
  if (found === undefined) {
    throw new HutchError('ZFS_TOOL', 'the zfs storage driver needs the zfs tool, which is not installed', {
      hint: 'Install OpenZFS (Debian: sudo apt-get install zfsutils-linux) or zfs-fuse.',
    });
  }
  return found;
}

export interface ZfsResult {
  ok: boolean;
  stdout: string;
  /** The tool's own words, for error messages. */
  error: string;
}

export function zfs(args: string[]): ZfsResult {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync(tool(), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const error = (r.stderr ?? '').trim().split('\n')[0] ?? '';
  return {
    ok: r.status === 0,
    stdout: r.stdout ?? '',
    error: error || r.error?.message || `zfs exited with ${r.status}`,
  };
}

/** Runs `zfs ARGS` and throws with the tool's words when it fails. */
export function zfsOrThrow(args: string[], what: string): string {
  const r = zfs(args);
  if (r.ok) return r.stdout;
  throw new HutchError('STORAGE', `${what} failed: ${r.error}`, {
    hint: 'Check the pool (zpool status, zfs list) and run `hutch doctor`.',
  });
}

/**
 * Mounts a dataset at its mountpoint. zfs-fuse mounts a clone as it makes
 * it even with canmount=noauto, so "already mounted" is success.
 */
export function mountDataset(name: string): void {
  // "busy" for a while after an unmount, or while a killed command's zfs child still runs: retried up to 3 s.
  for (let attempt = 0; attempt < 60; attempt++) {
    const r = zfs(['mount', name]);
    if (r.ok || /already mounted/.test(r.error)) return;
    if (!/busy/.test(r.error)) break;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
  zfsOrThrow(['mount', name], `mounting ${name}`);
}

/** Unmounts a dataset; one not mounted is fine. */
export function unmountDataset(name: string): void {
  const r = zfs(['unmount', name]);
  if (r.ok || /not currently mounted/.test(r.error)) return;
  zfsOrThrow(['unmount', '-f', name], `unmounting ${name}`);
}

/**
 * Runs `zfs ARGS` on a dataset just unmounted. zfs-fuse may call it busy
 * for a moment after its FUSE mount went away (the kernel ends the mount
 * after the unmount call returns), so "busy" is retried for half a second.
 * A dataset stays busy for good while another mount namespace holds a copy
 * of its mount (one made while it was mounted): the error says so.
 */
export function zfsAfterUnmount(args: string[], what: string, opts: { tries?: number } = {}): void {
  for (let attempt = 0; ; attempt++) {
    const r = zfs(args);
    if (r.ok) return;
    if (!/busy/.test(r.error) || attempt >= (opts.tries ?? 10)) {
      throw new HutchError('STORAGE', `${what} failed: ${r.error}`, {
        hint: 'Another mount namespace may hold a copy of its mount (grep its name in /proc/*/mountinfo), or a process uses a file in it.',
      });
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

/** Destroys a dataset and its snapshots, unmounting it first. */
export function destroyDataset(name: string): void {
  unmountDataset(name);
  zfsAfterUnmount(['destroy', '-r', name], `destroying ${name}`);
}

export interface Dataset {
  name: string;
  /** The snapshot it was cloned from, or undefined. */
  origin: string | undefined;
  mountpoint: string;
  mounted: boolean;
  /** The user property hutch:removed is set: a removed layer kept for its clones. */
  removed: boolean;
}

/** Parses `zfs list -H -o name,origin,mountpoint,mounted,hutch:removed` (tab-separated, "-" for none). */
export function parseDatasets(text: string): Dataset[] {
  const out: Dataset[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [name = '', origin = '-', mountpoint = '-', mounted = 'no', removed = '-'] = line.split('\t');
    out.push({
      name,
      origin: origin === '-' ? undefined : origin,
      mountpoint,
      mounted: mounted === 'yes',
      removed: removed === '1',
    });
  }
  return out;
}

/** Every filesystem under `parent` (itself included), in one spawn. */
export function listDatasets(parent: string): Dataset[] {
  const out = zfsOrThrow(
    ['list', '-H', '-t', 'filesystem', '-o', `name,origin,mountpoint,mounted,${REMOVED_PROP}`, '-r', parent],
    `listing the datasets under ${parent}`,
  );
  return parseDatasets(out);
}

export function datasetExists(name: string): boolean {
  return zfs(['list', '-H', '-o', 'name', name]).ok;
}

/** Numeric values of properties (`zfs get -Hp`), by name; NaN where the tool gave none. */
export function numericProps(name: string, props: string[]): Record<string, number> {
  const out = zfsOrThrow(['get', '-Hp', '-o', 'property,value', props.join(','), name], `reading ${name}`);
  const values: Record<string, number> = {};
  for (const line of out.split('\n')) {
    const [prop, value] = line.split('\t');
    if (prop) values[prop] = Number.parseFloat(value ?? '');
  }
  return values;
}

/**
 * Store snapshots (../../runtime/store-snapshots-zfs.ts) are recursive
 * snapshots `DATASET@st-<hex>`: a dataset holding one is retired, never
 * destroyed, until the store snapshot goes.
 */
export const STORE_SNAP_PREFIX = 'st-';

/** Datasets (full names) holding a store snapshot, from one listing of the pool under `parent`. */
export function pinnedByStoreSnapshots(parent: string): Set<string> {
  const r = zfs(['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', parent]);
  const out = new Set<string>();
  for (const line of r.ok ? r.stdout.split('\n') : []) {
    const at = line.indexOf('@');
    if (at > 0 && line.startsWith(STORE_SNAP_PREFIX, at + 1)) out.add(line.slice(0, at));
  }
  return out;
}
