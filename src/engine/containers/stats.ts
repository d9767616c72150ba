/**
 * `hutch stats`: what a container uses, with docker's columns and units.
 *
 * A container with a cgroup of its own (rootful ones, rootless ones with
 * delegated controllers) is measured by the kernel's own accounting in that
 * cgroup, v1 or v2, as docker does. Rootless containers without one (cgroup
 * v1 hosts, or no limits asked for) are measured from /proc of their
 * processes instead: CPU time of the processes (plus what their ended
 * children left behind), their proportional memory, threads, disk I/O, and
 * the network counters of the init's namespace. The limit is then the
 * host's memory, which is what bounds such a container.
 *
 * CPU % is docker's: CPU time used over the interval against wall time, so
 * 100% is one CPU busy and a busy container on four CPUs shows up to 400%.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostCgroupLayout } from '../../host/cgroups.ts';
import { observedState } from '../../runtime/containers/liveness.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import type { OciSpec } from '../../runtime/spec.ts';
import { humanSize } from '../../util/human.ts';
import type { Containers } from './open.ts';
import { CLOCK_TICKS, containerPids, readStat } from './top.ts';

export interface StatsSample {
  /** Monotonic time of the reading, ns. */
  at: number;
  /** CPU time used since the container started, ns. */
  cpuNs: number;
  memory: number;
  memoryLimit: number;
  pids: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
}

/** One row with docker's stats fields, for tables and --format. */
export interface StatsRow {
  Container: string;
  ID: string;
  Name: string;
  CPUPerc: string;
  MemUsage: string;
  MemPerc: string;
  NetIO: string;
  BlockIO: string;
  PIDs: string;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** A "key value" line of memory.stat, cpu.stat, /proc/meminfo and the like. */
function keyed(text: string | undefined, key: string): number | undefined {
  const m = new RegExp(`^${key}:?\\s+(\\d+)`, 'm').exec(text ?? '');
  return m ? Number(m[1]) : undefined;
}

export function hostMemory(): number {
  return (keyed(read('/proc/meminfo'), 'MemTotal') ?? 0) * 1024;
}

/** The cgroupsPath the container was started with, if it has a cgroup of its own. */
export function ownCgroupPath(c: Containers, rec: ContainerRecord): string | undefined {
  const text = read(join(c.store.bundle(rec.id), 'config.json'));
  if (!text) return undefined;
  try {
    return (JSON.parse(text) as OciSpec).linux?.cgroupsPath || undefined;
  } catch {
    return undefined;
  }
}

/** Where a process's cgroup is, per v1 controller and in the v2 hierarchy. */
interface CgroupDirs {
  v1: Map<string, string>;
  v2: string | undefined;
}

/** From /proc/PID/cgroup ("ID:CONTROLLERS:PATH" lines) and the mounts of the hierarchies. */
function cgroupDirs(pid: number): CgroupDirs | undefined {
  const text = read(`/proc/${pid}/cgroup`);
  if (!text) return undefined;
  const layout = hostCgroupLayout();
  const dirs: CgroupDirs = { v1: new Map(), v2: undefined };
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, id, controllers, path] = m as unknown as [string, string, string, string];
    if (id === '0' && controllers === '') {
      if (layout.v2Mount) dirs.v2 = join(layout.v2Mount, path);
      continue;
    }
    for (const ctl of controllers.split(',')) {
      const h = layout.v1.find((x) => x.controllers.includes(ctl));
      if (h) dirs.v1.set(ctl, join(h.mountPoint, path));
    }
  }
  return dirs;
}

/** The parts of a sample the cgroup can tell; absent where a file is missing. */
function cgroupSample(dirs: CgroupDirs): Partial<StatsSample> {
  const out: Partial<StatsSample> = {};
  const v1 = (ctl: string, file: string): string | undefined => {
    const d = dirs.v1.get(ctl);
    return d ? read(join(d, file)) : undefined;
  };
  const v2 = (file: string): string | undefined => (dirs.v2 ? read(join(dirs.v2, file)) : undefined);
  // On hybrid hosts a controller is in v1 when mounted there, else in the unified hierarchy.
  const cpuV1 = num(v1('cpuacct', 'cpuacct.usage'));
  const cpuV2 = keyed(v2('cpu.stat'), 'usage_usec');
  if (cpuV1 !== undefined) out.cpuNs = cpuV1;
  else if (cpuV2 !== undefined) out.cpuNs = cpuV2 * 1000;

  // docker subtracts the page cache the kernel can drop at once (inactive files).
  const memV1 = num(v1('memory', 'memory.usage_in_bytes'));
  const memV2 = num(v2('memory.current'));
  if (memV1 !== undefined) {
    const stat = v1('memory', 'memory.stat');
    const cache = keyed(stat, 'total_inactive_file') ?? 0;
    out.memory = Math.max(0, memV1 - (cache < memV1 ? cache : 0));
    const limit = num(v1('memory', 'memory.limit_in_bytes'));
    if (limit !== undefined) out.memoryLimit = limit;
  } else if (memV2 !== undefined) {
    const cache = keyed(v2('memory.stat'), 'inactive_file') ?? 0;
    out.memory = Math.max(0, memV2 - (cache < memV2 ? cache : 0));
    const max = v2('memory.max')?.trim();
    if (max !== undefined) out.memoryLimit = max === 'max' ? Infinity : Number(max);
  }

  const pids = num(v1('pids', 'pids.current')) ?? num(v2('pids.current'));
  if (pids !== undefined) out.pids = pids;

  const blk =
    v1('blkio', 'blkio.throttle.io_service_bytes_recursive') ??
    v1('blkio', 'blkio.throttle.io_service_bytes');
  if (blk !== undefined) {
    let r = 0;
    let w = 0;
    for (const line of blk.split('\n')) {
      const m = /^\d+:\d+ (Read|Write) (\d+)$/.exec(line.trim());
      if (m?.[1] === 'Read') r += Number(m[2]);
      else if (m?.[1] === 'Write') w += Number(m[2]);
    }
    out.blockRead = r;
    out.blockWrite = w;
  } else {
    const io = v2('io.stat');
    if (io !== undefined) {
      let r = 0;
      let w = 0;
      for (const line of io.split('\n')) {
        r += Number(/\brbytes=(\d+)/.exec(line)?.[1] ?? 0);
        w += Number(/\bwbytes=(\d+)/.exec(line)?.[1] ?? 0);
      }
      out.blockRead = r;
      out.blockWrite = w;
    }
  }
  return out;
}

/** Proportional set size (shared pages split among their users), else the resident set, in bytes. */
function processMemory(pid: number): number {
  const pss = keyed(read(`/proc/${pid}/smaps_rollup`), 'Pss');
  if (pss !== undefined) return pss * 1024;
  return (keyed(read(`/proc/${pid}/status`), 'VmRSS') ?? 0) * 1024;
}

/** What /proc says of the processes; the fallback for every part a cgroup does not give. */
function procSample(pids: readonly number[]): Omit<StatsSample, 'at' | 'netRx' | 'netTx' | 'memoryLimit'> {
  let ticks = 0;
  let memory = 0;
  let threads = 0;
  let blockRead = 0;
  let blockWrite = 0;
  for (const pid of pids) {
    const st = readStat(pid);
    if (!st) continue;
    // Children's times count once they are reaped, so work of ended processes is not lost.
    ticks += st.utime + st.stime + st.cutime + st.cstime;
    threads += st.threads;
    memory += processMemory(pid);
    const io = read(`/proc/${pid}/io`);
    blockRead += keyed(io, 'read_bytes') ?? 0;
    blockWrite += keyed(io, 'write_bytes') ?? 0;
  }
  return { cpuNs: (ticks * 1e9) / CLOCK_TICKS, memory, pids: threads, blockRead, blockWrite };
}

/** Bytes received and sent on the interfaces of the init's network namespace, loopback aside. */
function netSample(pid: number): { netRx: number; netTx: number } {
  let netRx = 0;
  let netTx = 0;
  for (const line of (read(`/proc/${pid}/net/dev`) ?? '').split('\n')) {
    const at = line.indexOf(':');
    if (at < 0) continue;
    const name = line.slice(0, at).trim();
    if (name === 'lo' || name.includes('|')) continue;
    const f = line
      .slice(at + 1)
      .trim()
      .split(/\s+/);
    netRx += Number(f[0] ?? 0);
    netTx += Number(f[8] ?? 0);
  }
  return { netRx, netTx };
}

/** One reading of a running container; undefined when it is not running. */
export function sampleContainer(c: Containers, rec: ContainerRecord): StatsSample | undefined {
  const state = observedState(rec, c.store.exitFile(rec.id));
  if ((state.status !== 'running' && state.status !== 'paused') || !(state.pid > 0)) return undefined;
  const at = Number(process.hrtime.bigint());
  const pids = containerPids({ ...rec, state });
  if (pids.length === 0) return undefined;
  const total = hostMemory();
  const dirs = ownCgroupPath(c, rec) ? cgroupDirs(state.pid) : undefined;
  const fromCgroup = dirs ? cgroupSample(dirs) : {};
  const fromProc = procSample(pids);
  // A host network namespace has no counters of the container's own: docker shows none.
  const net = rec.hostConfig.networkMode === 'host' ? { netRx: 0, netTx: 0 } : netSample(state.pid);
  const limit = fromCgroup.memoryLimit;
  return {
    ...fromProc,
    ...fromCgroup,
    ...net,
    at,
    // An unlimited cgroup reports a huge number (v1) or "max" (v2): the host's memory is the real bound.
    memoryLimit: limit !== undefined && limit > 0 && limit < total ? limit : total,
  };
}

/** go-units' BytesSize: binary units, four significant digits ("1.5MiB", "7.684GiB"). */
export function bytesSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/** CPU % between two readings of the same container (0 for the first). */
export function cpuPercent(prev: StatsSample | undefined, cur: StatsSample): number {
  if (!prev) return 0;
  const wall = cur.at - prev.at;
  const used = cur.cpuNs - prev.cpuNs;
  // Processes that ended unreaped by the container (an exec'd one) take their time along: never below 0.
  return wall > 0 && used > 0 ? (used / wall) * 100 : 0;
}

/**
 * A row of the table. `label` is how the user named the container (docker's
 * Container field), or its short ID when all containers are listed.
 */
export function statsRow(
  rec: ContainerRecord,
  label: string,
  prev: StatsSample | undefined,
  cur: StatsSample | undefined,
  noTrunc: boolean,
): StatsRow {
  const base = { Container: label, ID: noTrunc ? rec.id : rec.id.slice(0, 12), Name: rec.name };
  if (!cur) {
    return {
      ...base,
      CPUPerc: '0.00%',
      MemUsage: '0B / 0B',
      MemPerc: '0.00%',
      NetIO: '0B / 0B',
      BlockIO: '0B / 0B',
      PIDs: '0',
    };
  }
  const memPerc = cur.memoryLimit > 0 ? (cur.memory / cur.memoryLimit) * 100 : 0;
  return {
    ...base,
    CPUPerc: `${cpuPercent(prev, cur).toFixed(2)}%`,
    MemUsage: `${bytesSize(cur.memory)} / ${bytesSize(cur.memoryLimit)}`,
    MemPerc: `${memPerc.toFixed(2)}%`,
    NetIO: `${humanSize(cur.netRx)} / ${humanSize(cur.netTx)}`,
    BlockIO: `${humanSize(cur.blockRead)} / ${humanSize(cur.blockWrite)}`,
    PIDs: String(cur.pids),
  };
}
