/**
 * docker run's resource flags (--memory, --cpus, --pids-limit, --ulimit,
 * --device, --sysctl, --shm-size, ...) parsed with docker's units, defaults
 * and errors into the pieces of an OCI spec, and the check that the cgroup
 * controllers those limits need are there. A limit hutch cannot enforce is
 * an error, never silently dropped.
 */
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isAbsolute, join, posix, relative } from 'node:path';
import { cgroupLayout, userDelegation } from '../host/cgroups.ts';
import { systemdIsPid1 } from '../host/systemd.ts';
import { realHost } from '../host/view.ts';
import type { HostView } from '../host/view.ts';
import { identity } from '../sys/identity.ts';
import { errnoCode, HutchError } from '../util/errors.ts';

export type Controller = 'memory' | 'cpu' | 'pids' | 'io' | 'cpuset';

export interface OciThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

/** The OCI linux.resources object (the parts hutch sets). */
export interface OciResources {
  memory?: { limit?: number; reservation?: number; swap?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string };
  pids?: { limit: number };
  blockIO?: {
    weight?: number;
    throttleReadBpsDevice?: OciThrottleDevice[];
    throttleWriteBpsDevice?: OciThrottleDevice[];
    throttleReadIOPSDevice?: OciThrottleDevice[];
    throttleWriteIOPSDevice?: OciThrottleDevice[];
  };
}

/** An entry of the OCI process.rlimits list. */
export interface OciRlimit {
  type: string;
  soft: number;
  hard: number;
}

/** An entry of the OCI linux.devices list: a node to create in the container. */
export interface OciDevice {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** An entry of the OCI linux.resources.devices list: the device cgroup's allow rule. */
export interface OciDeviceCgroup {
  allow: boolean;
  type: 'c' | 'b';
  major: number;
  minor: number;
  access: string;
}

function badFlag(flag: string, message: string, hint?: string): HutchError {
  return new HutchError('BAD_FLAG', `${flag}: ${message}`, hint === undefined ? {} : { hint });
}

// ---------------------------------------------------------------------------
// Numbers and sizes

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * A size as docker writes it: a number of bytes, or with a binary unit
 * (b, k, m, g, t in any case, optionally followed by "b" or "ib": 64m, 64MB,
 * 1.5GiB). Fractions round down to whole bytes.
 */
export function parseBytes(value: string | number, flag: string): number {
  const text = String(value).trim();
  const m = /^(\d+(?:\.\d+)?) ?(?:([kmgt])i?)?b?$/i.exec(text);
  const bytes = m?.[1] ? Math.floor(Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] ?? 1)) : NaN;
  if (!Number.isSafeInteger(bytes))
    throw badFlag(
      flag,
      `"${text}" is not a size`,
      'Give a number of bytes, or a number with a unit: b, k, m, g or t (e.g. 512m, 2g).',
    );
  return bytes;
}

/** An integer flag value, within [min, max] when given. */
function integer(value: string | number, flag: string, min?: number, max?: number): number {
  const text = String(value).trim();
  const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw badFlag(flag, `"${text}" is not a whole number`);
  if ((min !== undefined && n < min) || (max !== undefined && n > max))
    throw badFlag(flag, `${n} is out of range: it must be ${rangeText(min, max)}`);
  return n;
}

function rangeText(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `from ${min} to ${max}`;
  return min !== undefined ? `at least ${min}` : `at most ${max}`;
}

/** Flags left out, empty, or 0 (docker's "not set") are absent. */
function given(v: string | number | undefined): v is string | number {
  return v !== undefined && String(v).trim() !== '' && String(v).trim() !== '0';
}

// ---------------------------------------------------------------------------
// Device numbers

/** major(3) and minor(3) of a dev_t, in glibc's encoding (12+20 bits split over the 64). */
export function deviceNumbers(rdev: bigint): { major: number; minor: number } {
  const major = (((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)) & 0xffffffffn;
  const minor = ((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)) & 0xffffffffn;
  return { major: Number(major), minor: Number(minor) };
}

/** The fields of a bigint stat that describe a device node. */
interface NodeStat {
  rdev: bigint;
  mode: bigint;
  uid: bigint;
  gid: bigint;
}

const S_IFMT = 0o170000n;
const S_IFCHR = 0o020000n;
const S_IFBLK = 0o060000n;
const S_IFDIR = 0o040000n;

function nodeType(mode: bigint): 'c' | 'b' | 'dir' | undefined {
  const t = mode & S_IFMT;
  return t === S_IFCHR ? 'c' : t === S_IFBLK ? 'b' : t === S_IFDIR ? 'dir' : undefined;
}

// ---------------------------------------------------------------------------
// Cgroup limits

export interface ResourceFlags {
  memory?: string | number | undefined;
  memorySwap?: string | number | undefined;
  memoryReservation?: string | number | undefined;
  cpus?: string | number | undefined;
  cpuShares?: string | number | undefined;
  cpuQuota?: string | number | undefined;
  cpuPeriod?: string | number | undefined;
  cpusetCpus?: string | undefined;
  pidsLimit?: string | number | undefined;
  blkioWeight?: string | number | undefined;
  deviceReadBps?: readonly string[] | undefined;
  deviceWriteBps?: readonly string[] | undefined;
  deviceReadIops?: readonly string[] | undefined;
  deviceWriteIops?: readonly string[] | undefined;
}

export interface BuiltResources {
  resources: OciResources;
  /** The cgroup controllers the requested limits need. */
  needs: Set<Controller>;
  /** For error messages: the flags that asked for each controller. */
  requestedBy: Map<Controller, string[]>;
}

/** docker refuses memory limits below 6 MiB: the container could not even start. */
export const MIN_MEMORY = 6 * 1024 * 1024;
export const CPU_PERIOD = 100_000;

/** A cpuset list ("0-3,5") as the CPU numbers it names, or undefined if it does not parse. */
export function parseCpuList(text: string): number[] | undefined {
  const out = new Set<number>();
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return undefined;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to - from > 65536) return undefined;
    for (let c = from; c <= to; c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

function onlineCpus(host: HostView): number[] {
  const text = host.readFile('/sys/devices/system/cpu/online');
  const list = text === undefined ? undefined : parseCpuList(text);
  return list ?? Array.from({ length: availableParallelism() }, (_, i) => i);
}

/** "PATH:VALUE" of --device-read-bps and friends, the device resolved to its numbers. */
function throttle(entry: string, flag: string, rate: (v: string) => number): OciThrottleDevice {
  const at = entry.lastIndexOf(':');
  const path = at > 0 ? entry.slice(0, at) : '';
  if (!isAbsolute(path)) throw badFlag(flag, `"${entry}" is not DEVICE:RATE with an absolute device path`);
  let st;
  try {
    st = statSync(path, { bigint: true });
  } catch (e) {
    throw badFlag(flag, `cannot use ${path} (${errnoCode(e) ?? String(e)})`);
  }
  if (nodeType(st.mode) !== 'b')
    throw badFlag(
      flag,
      `${path} is not a block device`,
      'Throttles apply to disks: name one such as /dev/sda.',
    );
  return { ...deviceNumbers(st.rdev), rate: rate(entry.slice(at + 1)) };
}

/**
 * The OCI linux.resources for docker run's resource flags, with docker's
 * rules: --memory-swap is memory plus swap (-1: unlimited swap; default
 * twice --memory), --cpus becomes a CFS quota over a 100 ms period, and
 * --pids-limit 0 or -1 means no limit. `host` supplies the online CPUs.
 */
export function buildResources(flags: ResourceFlags, host: HostView = realHost()): BuiltResources {
  const resources: OciResources = {};
  const requestedBy = new Map<Controller, string[]>();
  const need = (c: Controller, flag: string): void => {
    requestedBy.set(c, [...(requestedBy.get(c) ?? []), flag]);
  };

  // Memory.
  const memory: NonNullable<OciResources['memory']> = {};
  // 0 (in any unit) is docker's "no limit".
  const limit = given(flags.memory) ? parseBytes(flags.memory, '--memory') : 0;
  if (limit > 0) {
    if (limit < MIN_MEMORY) throw badFlag('--memory', 'the minimum memory limit is 6m');
    memory.limit = limit;
    need('memory', '--memory');
  }
  if (given(flags.memorySwap)) {
    if (memory.limit === undefined)
      throw badFlag('--memory-swap', 'it needs --memory too', 'Set --memory when using --memory-swap.');
    if (String(flags.memorySwap).trim() === '-1') memory.swap = -1;
    else {
      memory.swap = parseBytes(flags.memorySwap, '--memory-swap');
      if (memory.swap < memory.limit)
        throw badFlag(
          '--memory-swap',
          'it must be at least --memory: it is the total of memory and swap',
          'Use --memory-swap -1 for unlimited swap, or the same value as --memory for none.',
        );
    }
    need('memory', '--memory-swap');
  } else if (memory.limit !== undefined) {
    memory.swap = memory.limit * 2;
  }
  if (given(flags.memoryReservation)) {
    memory.reservation = parseBytes(flags.memoryReservation, '--memory-reservation');
    if (memory.limit !== undefined && memory.reservation > memory.limit)
      throw badFlag('--memory-reservation', 'it must not be more than --memory');
    need('memory', '--memory-reservation');
  }
  if (Object.keys(memory).length > 0) resources.memory = memory;

  // CPU.
  const cpu: NonNullable<OciResources['cpu']> = {};
  if (given(flags.cpus)) {
    if (given(flags.cpuQuota) || given(flags.cpuPeriod))
      throw badFlag('--cpus', 'it cannot be combined with --cpu-period or --cpu-quota');
    const text = String(flags.cpus).trim();
    const n = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) : NaN;
    const count = onlineCpus(host).length;
    if (!(n >= 0.01 && n <= count))
      throw badFlag(
        '--cpus',
        `"${text}" is out of range: it must be from 0.01 to ${count}, the CPUs available`,
      );
    cpu.quota = Math.round(n * CPU_PERIOD);
    cpu.period = CPU_PERIOD;
    need('cpu', '--cpus');
  }
  if (given(flags.cpuShares)) {
    cpu.shares = integer(flags.cpuShares, '--cpu-shares', 2, 262144);
    need('cpu', '--cpu-shares');
  }
  if (given(flags.cpuQuota)) {
    const q = integer(flags.cpuQuota, '--cpu-quota', -1);
    if (q > 0 && q < 1000) throw badFlag('--cpu-quota', 'it must be at least 1000 (1 ms), or -1 for none');
    cpu.quota = q;
    need('cpu', '--cpu-quota');
  }
  if (given(flags.cpuPeriod)) {
    cpu.period = integer(flags.cpuPeriod, '--cpu-period', 1000, 1_000_000);
    need('cpu', '--cpu-period');
  }
  if (flags.cpusetCpus !== undefined && flags.cpusetCpus.trim() !== '') {
    const wanted = parseCpuList(flags.cpusetCpus);
    if (!wanted) throw badFlag('--cpuset-cpus', `"${flags.cpusetCpus}" is not a CPU list such as 0-3,5`);
    const online = onlineCpus(host);
    const missing = wanted.filter((c) => !online.includes(c));
    if (missing.length > 0)
      throw badFlag(
        '--cpuset-cpus',
        `CPU ${missing.join(', ')} not available; this host has ${online.length}`,
      );
    cpu.cpus = flags.cpusetCpus.trim();
    need('cpuset', '--cpuset-cpus');
  }
  if (Object.keys(cpu).length > 0) resources.cpu = cpu;

  // Processes: 0 and -1 ask for no limit, which needs no controller.
  if (flags.pidsLimit !== undefined && String(flags.pidsLimit).trim() !== '') {
    const limit = integer(flags.pidsLimit, '--pids-limit', -1);
    if (limit > 0) {
      resources.pids = { limit };
      need('pids', '--pids-limit');
    }
  }

  // Block IO.
  const blockIO: NonNullable<OciResources['blockIO']> = {};
  if (given(flags.blkioWeight)) {
    blockIO.weight = integer(flags.blkioWeight, '--blkio-weight', 10, 1000);
    need('io', '--blkio-weight');
  }
  const bps = (flag: string) => (v: string) => parseBytes(v, flag);
  const iops = (flag: string) => (v: string) => integer(v, flag, 0);
  const throttles = [
    ['--device-read-bps', flags.deviceReadBps, 'throttleReadBpsDevice', bps],
    ['--device-write-bps', flags.deviceWriteBps, 'throttleWriteBpsDevice', bps],
    ['--device-read-iops', flags.deviceReadIops, 'throttleReadIOPSDevice', iops],
    ['--device-write-iops', flags.deviceWriteIops, 'throttleWriteIOPSDevice', iops],
  ] as const;
  for (const [flag, entries, key, rate] of throttles) {
    if (!entries || entries.length === 0) continue;
    blockIO[key] = entries.map((e) => throttle(e, flag, rate(flag)));
    need('io', flag);
  }
  if (Object.keys(blockIO).length > 0) resources.blockIO = blockIO;

  return { resources, needs: new Set(requestedBy.keys()), requestedBy };
}

export interface AvailableControllers {
  /** Controller names as cgroup v2 spells them (v1's blkio is io). */
  controllers: Set<string>;
  rootless: boolean;
  /** Why controllers are missing, when some are. */
  reason?: string | undefined;
}

const LIMIT_CONTROLLERS: readonly Controller[] = ['memory', 'cpu', 'cpuset', 'io', 'pids'];

function v2Names(names: readonly string[]): Set<string> {
  return new Set(names.map((c) => (c === 'blkio' ? 'io' : c)));
}

/**
 * The controllers containers started now could use. As root, every
 * controller the host has mounted; rootless, only those delegated to the
 * user on cgroup v2 (the same place `hutch doctor` looks: systemd's
 * user@UID.service when systemd runs the machine, else the cgroup this
 * process is in), since cgroup v1 cannot be delegated at all.
 */
export function availableControllers(
  rootless: boolean,
  opts: { host?: HostView; uid?: number; systemd?: boolean } = {},
): AvailableControllers {
  const host = opts.host ?? realHost();
  const layout = cgroupLayout(host);
  if (!rootless) {
    if (layout.mode === 'none')
      return { controllers: new Set(), rootless, reason: 'no cgroup filesystem is mounted' };
    // On hybrid hosts the limits go to the v1 hierarchies.
    const names = layout.mode === 'v2' ? layout.v2Controllers : layout.v1.flatMap((h) => h.controllers);
    const controllers = v2Names(names);
    const missing = LIMIT_CONTROLLERS.filter((c) => !controllers.has(c));
    return {
      controllers,
      rootless,
      reason: missing.length > 0 ? `the host's cgroups have no ${missing.join(', ')} controller` : undefined,
    };
  }
  if (layout.mode !== 'v2') {
    const what =
      layout.mode === 'none'
        ? 'no cgroup filesystem is mounted'
        : `cgroup ${layout.mode} cannot be delegated`;
    return { controllers: new Set(), rootless, reason: `${what}, so rootless containers cannot have limits` };
  }
  const uid = opts.uid ?? identity().uid;
  const d = userDelegation(host, layout, uid, opts.systemd ?? systemdIsPid1(host));
  if (!d) return { controllers: new Set(), rootless, reason: 'your cgroup is not in /proc/self/cgroup' };
  if (!d.exists)
    return {
      controllers: new Set(),
      rootless,
      reason: `${d.path} does not exist, so nothing is delegated to you`,
    };
  if (!d.writable)
    return {
      controllers: new Set(),
      rootless,
      reason: `${d.path} is not yours, so nothing is delegated to you`,
    };
  const controllers = v2Names(d.controllers);
  const have = LIMIT_CONTROLLERS.filter((c) => controllers.has(c));
  const lacking = LIMIT_CONTROLLERS.filter((c) => !controllers.has(c));
  const delegated = have.length > 0 ? `delegates ${have.join(', ')} to you but not` : 'delegates to you no';
  return {
    controllers,
    rootless,
    reason: lacking.length > 0 ? `${d.path} ${delegated} ${lacking.join(', ')}` : undefined,
  };
}

/**
 * Throws LIMITS_UNAVAILABLE naming every requested limit whose controller is
 * missing: running without a limit the user asked for would be silent harm.
 */
export function checkControllers(
  needs: ReadonlySet<Controller>,
  available: AvailableControllers,
  requestedBy?: ReadonlyMap<Controller, readonly string[]>,
): void {
  const missing = [...needs].filter((c) => !available.controllers.has(c));
  if (missing.length === 0) return;
  const limits = missing
    .map((c) => {
      const flags = requestedBy?.get(c);
      return flags && flags.length > 0 ? `${flags.join(', ')} (${c} controller)` : `the ${c} controller`;
    })
    .join('; ');
  const why = available.reason ? `: ${available.reason}` : '';
  throw new HutchError('LIMITS_UNAVAILABLE', `cannot enforce ${limits}${why}`, {
    hint: available.rootless
      ? 'Run `hutch doctor` to see the cgroup setup. On cgroup v2, have root delegate the controllers to you: ' +
        '`sudo hutch setup --user $(id -un)`, then log in again. On cgroup v1 rootless containers cannot have ' +
        'limits: leave out these flags, or run as root.'
      : 'Run `hutch doctor` to see the cgroup controllers; enable the missing ones, or leave out these flags.',
  });
}

// ---------------------------------------------------------------------------
// --ulimit

/** docker's ulimit names and the line of /proc/self/limits that shows each. */
const RLIMITS: Record<string, string> = {
  core: 'Max core file size',
  cpu: 'Max cpu time',
  data: 'Max data size',
  fsize: 'Max file size',
  locks: 'Max file locks',
  memlock: 'Max locked memory',
  msgqueue: 'Max msgqueue size',
  nice: 'Max nice priority',
  nofile: 'Max open files',
  nproc: 'Max processes',
  rss: 'Max resident set',
  rtprio: 'Max realtime priority',
  rttime: 'Max realtime timeout',
  sigpending: 'Max pending signals',
  stack: 'Max stack size',
};

/**
 * Stands in for RLIM_INFINITY (2^64-1), which a JS number cannot carry
 * exactly into the JSON spec. Used only when this process's own hard limit
 * is already unlimited, for the limits where the kernel accepts any value
 * (nofile is never unlimited): the container then holds a finite limit too
 * large to ever be reached, though tools print it as a number, not
 * "unlimited".
 */
export const UNLIMITED_STANDIN = Number.MAX_SAFE_INTEGER;

/** This process's hard limit for `name`: a number, 'unlimited', or undefined when unknown. */
function currentHardLimit(host: HostView, name: string): number | 'unlimited' | undefined {
  const label = RLIMITS[name];
  if (!label) return undefined;
  for (const line of (host.readFile('/proc/self/limits') ?? '').split('\n')) {
    if (!line.startsWith(label)) continue;
    const hard = line.slice(label.length).trim().split(/\s+/)[1];
    if (hard === 'unlimited') return hard;
    const n = Number(hard);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

function badUlimit(text: string, why: string): HutchError {
  return new HutchError('BAD_ULIMIT', `--ulimit ${text}: ${why}`, {
    hint: `Write NAME=SOFT[:HARD], -1 for unlimited; names: ${Object.keys(RLIMITS).join(', ')}.`,
  });
}

/**
 * One --ulimit NAME=SOFT[:HARD]. A single value sets both; -1 means
 * unlimited, which becomes this process's own hard limit (read from
 * /proc/self/limits; see UNLIMITED_STANDIN when that is unlimited too), and
 * a soft -1 with a finite hard limit is that hard limit. Rootless, a hard
 * limit cannot be raised beyond the current one.
 */
export function parseUlimit(text: string, opts: { rootless: boolean; host?: HostView }): OciRlimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(text.trim());
  if (!m?.[1] || m[2] === undefined) throw badUlimit(text, 'not NAME=SOFT[:HARD]');
  const name = m[1];
  if (!(name in RLIMITS)) throw badUlimit(text, `unknown limit "${name}"`);
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  for (const v of [soft, hard])
    if (!Number.isSafeInteger(v) || v < -1)
      throw badUlimit(text, `${v} is not a limit (use -1 for unlimited)`);
  if (soft !== -1 && hard !== -1 && soft > hard)
    throw badUlimit(text, 'the soft limit is more than the hard limit');

  const current = currentHardLimit(opts.host ?? realHost(), name);
  const unlimited = current === 'unlimited' || current === undefined ? UNLIMITED_STANDIN : current;
  const hardValue = hard === -1 ? unlimited : hard;
  const softValue = soft === -1 ? hardValue : soft;
  if (opts.rootless && typeof current === 'number' && hardValue > current)
    throw new HutchError(
      'ULIMIT_TOO_HIGH',
      `--ulimit ${text}: the hard limit of ${name} can be at most ${current}`,
      {
        hint: `A rootless container cannot raise a hard limit above your own (ulimit -H shows it). Use ${name}=${Math.min(softValue, current)}:${current} or less, or have root raise your limit (limits.conf).`,
      },
    );
  return { type: `RLIMIT_${name.toUpperCase()}`, soft: softValue, hard: hardValue };
}

// ---------------------------------------------------------------------------
// --device

export interface DeviceMapping {
  device: OciDevice;
  allow: OciDeviceCgroup;
}

function badDevice(text: string, why: string): HutchError {
  return new HutchError('BAD_DEVICE', `--device ${text}: ${why}`, {
    hint: 'Write HOST-PATH[:CONTAINER-PATH][:PERMISSIONS], PERMISSIONS being some of r, w, m (e.g. /dev/fuse or /dev/sdb:/dev/xvdb:r).',
  });
}

/** Splits HOST[:CONTAINER][:PERMS]; a second field made of r, w, m is the permissions. */
function splitDevice(text: string): { host: string; container: string; access: string } {
  const parts = text.split(':');
  const isAccess = (s: string | undefined): boolean => s !== undefined && /^[rwm]{1,3}$/.test(s);
  const [host = '', second, third] = parts;
  if (parts.length > 3) throw badDevice(text, 'too many ":"');
  let container = host;
  let access = 'rwm';
  if (parts.length === 2 && second !== undefined) {
    if (isAccess(second)) access = second;
    else container = second;
  } else if (parts.length === 3 && second !== undefined && third !== undefined) {
    if (!isAccess(third)) throw badDevice(text, `"${third}" is not permissions made of r, w, m`);
    container = second;
    access = third;
  }
  if (!isAbsolute(host)) throw badDevice(text, `"${host}" is not an absolute path`);
  if (!isAbsolute(container)) throw badDevice(text, `"${container}" is not an absolute path`);
  // Each letter once, in rwm order.
  access = ['r', 'w', 'm'].filter((c) => access.includes(c)).join('');
  return { host, container, access };
}

function mapping(path: string, type: 'c' | 'b', st: NodeStat, access: string): DeviceMapping {
  const { major, minor } = deviceNumbers(st.rdev);
  return {
    device: {
      path,
      type,
      major,
      minor,
      fileMode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
    },
    allow: { allow: true, type, major, minor, access },
  };
}

/** The device nodes under `dir`, as docker finds them: without following symlinks, skipping what cannot be read. */
function devicesUnder(dir: string): Array<[string, 'c' | 'b', NodeStat]> {
  const out: Array<[string, 'c' | 'b', NodeStat]> = [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    let st: NodeStat;
    try {
      st = lstatSync(p, { bigint: true });
    } catch {
      continue;
    }
    const type = nodeType(st.mode);
    if (type === 'dir') out.push(...devicesUnder(p));
    else if (type) out.push([p, type, st]);
  }
  return out;
}

/**
 * One --device HOST[:CONTAINER][:PERMS]: the node to create and its device
 * cgroup rule, from a stat of the host path. A directory gives every device
 * node beneath it, at the same place under CONTAINER.
 */
export function parseDevice(text: string): DeviceMapping[] {
  const { host, container, access } = splitDevice(text);
  let st: NodeStat;
  try {
    st = statSync(host, { bigint: true });
  } catch (e) {
    throw badDevice(
      text,
      errnoCode(e) === 'ENOENT'
        ? `${host} does not exist`
        : `cannot use ${host} (${errnoCode(e) ?? String(e)})`,
    );
  }
  const type = nodeType(st.mode);
  if (type === 'c' || type === 'b') return [mapping(container, type, st, access)];
  if (type !== 'dir') throw badDevice(text, `${host} is not a device`);
  const out = devicesUnder(host).map(([p, t, s]) =>
    mapping(posix.join(container, relative(host, p)), t, s, access),
  );
  if (out.length === 0) throw badDevice(text, `there are no devices in ${host}`);
  return out;
}

// ---------------------------------------------------------------------------
// --sysctl

const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);
const UTS_SYSCTLS = new Set(['kernel.domainname', 'kernel.hostname']);

function badSysctl(entry: string, why: string): HutchError {
  return new HutchError('BAD_SYSCTL', `--sysctl ${entry}: ${why}`, {
    hint:
      'Only namespaced sysctls can be set per container: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* ' +
      '(not with --ipc host), net.* (not with --network host), kernel.domainname and kernel.hostname (not with --uts host).',
  });
}

/**
 * --sysctl KEY=VALUE entries as the OCI linux.sysctl map. Only sysctls the
 * container's own namespaces hold are accepted: anything else would change
 * the host, and with a host namespace so would these.
 */
export function parseSysctls(
  list: readonly string[],
  ns: { hostNetwork: boolean; hostIpc: boolean; hostUts: boolean },
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of list) {
    const eq = entry.indexOf('=');
    const key = eq > 0 ? entry.slice(0, eq).trim() : '';
    const value = eq > 0 ? entry.slice(eq + 1) : '';
    if (key === '' || value === '') throw badSysctl(entry, 'not KEY=VALUE');
    if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) {
      if (ns.hostIpc) throw badSysctl(entry, `${key} is the host's with --ipc host`);
    } else if (key.startsWith('net.')) {
      if (ns.hostNetwork) throw badSysctl(entry, `${key} is the host's with --network host`);
    } else if (UTS_SYSCTLS.has(key)) {
      if (ns.hostUts) throw badSysctl(entry, `${key} is the host's with --uts host`);
    } else {
      throw badSysctl(entry, `${key} is not namespaced: setting it would change the whole host`);
    }
    out[key] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------
// --shm-size

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** --shm-size in bytes; unset or 0 is docker's default of 64m. */
export function parseShmSize(s: string | number | undefined): number {
  if (s === undefined || String(s).trim() === '') return DEFAULT_SHM_SIZE;
  const n = parseBytes(s, '--shm-size');
  return n === 0 ? DEFAULT_SHM_SIZE : n;
}
