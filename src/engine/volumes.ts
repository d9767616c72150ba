/**
 * `hutch volume ...`: create, list, inspect, remove and prune named volumes
 * (the store is ../runtime/volumes.ts). Whether a container uses a volume
 * is the container code's to say, through onVolumeUse.
 */
import { VolumeSnapshots } from '../runtime/volume-snapshots.ts';
import { VolumeStore, parseVolumeOptions } from '../runtime/volumes.ts';
import type { VolumeRecord } from '../runtime/volumes.ts';
import { HutchError } from '../util/errors.ts';
import type { Context } from './context.ts';
import { driverOptions, openStateful } from './context.ts';
import { chooseDriver } from '../storage/drivers/index.ts';
import { storeDataset } from '../storage/drivers/zfs-probe.ts';
import { storeDriver } from '../store/store.ts';

/** Hooks the container layer registers: which containers (running or not) use a volume. */
const usedBy: ((ctx: Context, name: string) => string[])[] = [];

export function onVolumeUse(fn: (ctx: Context, name: string) => string[]): void {
  usedBy.push(fn);
}

/** The containers that use a volume (none until the container code registers a hook). */
export function volumeUsers(ctx: Context, name: string): string[] {
  return usedBy.flatMap((f) => f(ctx, name));
}

/**
 * Enters the namespace and opens the store: volume content belongs to
 * sub-ids. The store's driver is settled first (chosen now for a new
 * store), since a zfs store keeps volumes as datasets under its recorded
 * dataset, from the first volume on.
 */
export function openVolumes(ctx: Context): VolumeStore {
  const store = openStateful(ctx);
  const driver = storeDriver(
    store,
    () => chooseDriver(ctx.storageDriver, ctx.paths.root, driverOptions(ctx)),
    ctx.storageDriver,
  );
  if (driver === 'zfs') storeDataset(ctx.paths.root, ctx.zfsDataset, ctx.ident.rootless);
  return new VolumeStore(ctx.paths.root);
}

/** `KEY=VALUE` (or `KEY` alone, for labels) into a map; later ones win, as docker's do. */
export function keyValues(items: readonly string[], what: 'label' | 'option'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (what === 'option' && eq < 1) {
      throw new HutchError('BAD_VOLUME_OPTION', `invalid driver option "${item}": not KEY=VALUE`, {
        hint: 'Give options as -o KEY=VALUE, e.g. -o type=tmpfs.',
      });
    }
    if (eq === 0) throw new HutchError('BAD_LABEL', `invalid label "${item}": the key is empty`);
    out[eq < 0 ? item : item.slice(0, eq)] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return out;
}

export interface CreateRequest {
  name?: string | undefined;
  driver?: string | undefined;
  labels?: string[];
  options?: string[];
}

export function createVolume(ctx: Context, req: CreateRequest): VolumeRecord {
  if (req.driver !== undefined && req.driver !== '' && req.driver !== 'local') {
    throw new HutchError('BAD_VOLUME_DRIVER', `volume driver "${req.driver}" is not available`, {
      hint: 'hutch has the local driver only (tmpfs and bind mounts through -o type=...).',
    });
  }
  const labels = keyValues(req.labels ?? [], 'label');
  const options = keyValues(req.options ?? [], 'option');
  return openVolumes(ctx).create({ name: req.name, labels, options });
}

function badFilter(f: string, why: string, allowed: string): HutchError {
  return new HutchError('BAD_FILTER', `invalid filter "${f}": ${why}`, { hint: `Filters here: ${allowed}` });
}

/** `name` and `driver` match all or part of the value (name as a regular expression), as docker's do. */
function matches(pattern: string, value: string): boolean {
  if (value.includes(pattern)) return true;
  try {
    return new RegExp(pattern).test(value);
  } catch {
    return false;
  }
}

function hasLabel(v: VolumeRecord, kv: string): boolean {
  const eq = kv.indexOf('=');
  const k = eq < 0 ? kv : kv.slice(0, eq);
  return Object.hasOwn(v.labels, k) && (eq < 0 || v.labels[k] === kv.slice(eq + 1));
}

type Test = (v: VolumeRecord) => boolean;

/**
 * Docker's filter rules: values of one key are alternatives (any may
 * match), except labels, which must all match; different keys must all hold.
 */
function compileFilters(ctx: Context, filters: readonly string[], keys: readonly string[]): Test[] {
  const allowed = keys.map((k) => `${k}=...`).join(', ');
  const byKey = new Map<string, string[]>();
  for (const f of filters) {
    const m = /^([a-z!]+)=(.*)$/.exec(f);
    if (!m || !keys.includes(m[1]!)) throw badFilter(f, 'unknown filter', allowed);
    if (m[2] === '' && m[1] !== 'name') throw badFilter(f, 'no value', allowed);
    byKey.set(m[1]!, [...(byKey.get(m[1]!) ?? []), m[2]!]);
  }
  const tests: Test[] = [];
  for (const [key, values] of byKey) {
    switch (key) {
      case 'name':
        tests.push((v) => values.some((p) => matches(p, v.name)));
        break;
      case 'driver':
        tests.push((v) => values.some((p) => matches(p, v.driver)));
        break;
      case 'label':
        tests.push((v) => values.every((kv) => hasLabel(v, kv)));
        break;
      case 'label!':
        tests.push((v) => !values.some((kv) => hasLabel(v, kv)));
        break;
      case 'dangling': {
        const wanted = values.map((x) => {
          if (/^(true|1)$/i.test(x)) return true;
          if (/^(false|0)$/i.test(x)) return false;
          throw badFilter(`dangling=${x}`, 'dangling takes true, false, 1 or 0', allowed);
        });
        tests.push((v) => wanted.includes(volumeUsers(ctx, v.name).length === 0));
        break;
      }
    }
  }
  return tests;
}

const LIST_FILTERS = ['name', 'driver', 'label', 'label!', 'dangling'];
const PRUNE_FILTERS = ['label', 'label!'];

export function listVolumes(ctx: Context, filters: readonly string[] = []): VolumeRecord[] {
  const tests = compileFilters(ctx, filters, LIST_FILTERS);
  return openVolumes(ctx)
    .list()
    .filter((v) => tests.every((t) => t(v)));
}

/** RFC 3339 to the second, as docker prints a volume's CreatedAt. */
export function createdAt(v: VolumeRecord): string {
  return v.created.replace(/\.\d+Z$/, 'Z');
}

/** Docker's `volume inspect` object. */
export function inspectShape(v: VolumeRecord): Record<string, unknown> {
  return {
    CreatedAt: createdAt(v),
    Driver: v.driver,
    Labels: v.labels,
    Mountpoint: v.mountpoint,
    Name: v.name,
    Options: v.options,
    Scope: 'local',
  };
}

/** A `volume ls` row: the fields docker's templates know, `.Label "key"` included. */
export function volumeRow(v: VolumeRecord): Record<string, unknown> {
  return {
    Name: v.name,
    Driver: v.driver,
    Scope: 'local',
    Mountpoint: v.mountpoint,
    CreatedAt: createdAt(v),
    Labels: Object.entries(v.labels)
      .map(([k, val]) => `${k}=${val}`)
      .join(','),
    Label: (key: string): string => v.labels[key] ?? '',
    Size: 'N/A',
    Links: 'N/A',
  };
}

export function inspectVolumes(
  ctx: Context,
  names: readonly string[],
): { found: Record<string, unknown>[]; errors: HutchError[] } {
  const store = openVolumes(ctx);
  const found: Record<string, unknown>[] = [];
  const errors: HutchError[] = [];
  for (const name of names) {
    try {
      const v = store.get(name);
      const shape = inspectShape(v);
      // How many snapshots `volume rm` would take with it; absent when none, so docker's shape stays docker's.
      const snapshots =
        parseVolumeOptions(v.options).kind === 'plain' ? new VolumeSnapshots(store).count(name) : 0;
      if (snapshots > 0) shape.Snapshots = snapshots;
      found.push(shape);
    } catch (e) {
      if (!(e instanceof HutchError)) throw e;
      errors.push(e);
    }
  }
  return { found, errors };
}

function inUse(name: string, users: string[]): HutchError {
  return new HutchError('VOLUME_IN_USE', `volume ${name} is in use by container(s) ${users.join(', ')}`, {
    hint: 'Remove those containers first (hutch rm), then the volume.',
    exitCode: 1,
  });
}

/**
 * Removes each volume no container uses; a failure does not stop the
 * others (docker prints an error per name and exits 1). `force` makes a
 * missing volume no error; it never removes one in use.
 */
export function removeVolumes(
  ctx: Context,
  names: readonly string[],
  force: boolean,
): { removed: string[]; errors: HutchError[] } {
  const store = openVolumes(ctx);
  const removed: string[] = [];
  const errors: HutchError[] = [];
  for (const name of names) {
    try {
      if (store.exists(name)) {
        const users = volumeUsers(ctx, name);
        if (users.length > 0) throw inUse(name, users);
      }
      store.remove(name, { force });
      removed.push(name);
    } catch (e) {
      if (!(e instanceof HutchError)) throw e;
      errors.push(new HutchError(e.code, e.message, { hint: e.hint, exitCode: 1 }));
    }
  }
  return { removed, errors };
}

export interface PruneVolumesResult {
  removed: string[];
  /** Bytes of the removed volumes' content. */
  reclaimed: number;
}

/** Removes every volume no container uses, narrowed by label filters. */
export function pruneVolumes(ctx: Context, filters: readonly string[] = []): PruneVolumesResult {
  const tests = compileFilters(ctx, filters, PRUNE_FILTERS);
  const store = openVolumes(ctx);
  const result: PruneVolumesResult = { removed: [], reclaimed: 0 };
  for (const v of store.list()) {
    if (!tests.every((t) => t(v)) || volumeUsers(ctx, v.name).length > 0) continue;
    let size = 0;
    try {
      size = store.diskUsage(v.name);
    } catch {
      // Unreadable content is still removable; it just counts as nothing.
    }
    if (store.remove(v.name, { force: true })) {
      result.removed.push(v.name);
      result.reclaimed += size;
    }
  }
  return result;
}
