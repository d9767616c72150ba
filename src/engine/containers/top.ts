/**
 * `hutch top`: the processes of a running container. With no daemon and no
 * cgroup to ask (rootless containers here have none), the container's
 * processes are found as the kernel groups them: every process in the pid
 * namespace of its init. The CLI runs as root of the user namespace the
 * containers live in, so it may read their /proc entries.
 *
 * Without ps options the rows are docker's `ps -ef` columns, computed from
 * /proc (nothing to spawn, and no dependency on procps); with options the
 * host's ps runs with them and its rows are kept for the container's pids,
 * as docker does.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { lookupUser } from '../../host/passwd.ts';
import { observedState } from '../../runtime/containers/liveness.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { HutchError } from '../../util/errors.ts';
import type { Containers } from './open.ts';

/**
 * USER_HZ, the unit of the times in /proc/PID/stat. The kernel fixes it at
 * 100 on every architecture Linux userspace sees (sysconf(_SC_CLK_TCK)).
 */
export const CLOCK_TICKS = 100;

/** The fields of /proc/PID/stat hutch uses. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  ttyNr: number;
  /** Clock ticks. */
  utime: number;
  stime: number;
  /** Clock ticks of waited-for children, so that the time of ended processes still counts. */
  cutime: number;
  cstime: number;
  threads: number;
  /** Clock ticks since boot. */
  startTime: number;
}

export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The name may hold spaces and parentheses: the fields resume after the last ')'.
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  const n = (i: number): number => Number(f[i] ?? 0);
  return {
    pid,
    comm: text.slice(text.indexOf('(') + 1, close),
    state: f[0] ?? '?',
    ppid: n(1),
    ttyNr: n(4),
    utime: n(11),
    stime: n(12),
    cutime: n(13),
    cstime: n(14),
    threads: n(17),
    startTime: n(19),
  };
}

function pidNamespace(pid: number | 'self'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^[0-9]+$/.test(n))
    .map(Number);
}

/** The record of a running (or paused) container, or docker's refusal. */
export function runningContainer(c: Containers, ref: string, what: string): ContainerRecord {
  const rec = c.store.get(ref);
  const s = observedState(rec, c.store.exitFile(rec.id));
  if ((s.status !== 'running' && s.status !== 'paused') || !(s.pid > 0)) {
    throw new HutchError('CONTAINER_NOT_RUNNING', `container ${rec.name} is not running`, {
      hint: `${what} needs a running container: start it with \`hutch start ${rec.name}\`.`,
    });
  }
  return rec;
}

/**
 * The pids (as this process sees them) of a running container's processes,
 * its init first; empty when the init has just gone. A container sharing
 * the host's pid namespace (--pid host) would match every process, so there
 * its processes are the init and its descendants instead.
 */
export function containerPids(rec: ContainerRecord): number[] {
  const init = rec.state.pid;
  const ns = pidNamespace(init);
  if (!ns) return [];
  const pids = allPids();
  if (ns !== pidNamespace('self')) {
    // Processes of other users of the host cannot be read: they are not the container's.
    return [init, ...pids.filter((p) => p !== init && pidNamespace(p) === ns)];
  }
  const children = new Map<number, number[]>();
  for (const p of pids) {
    const st = readStat(p);
    if (st) children.set(st.ppid, [...(children.get(st.ppid) ?? []), p]);
  }
  const out: number[] = [];
  const queue = [init];
  while (queue.length) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

export interface TopResult {
  titles: string[];
  processes: string[][];
}

export const PS_EF_TITLES = ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'];

function bootTime(): number {
  const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
  return m ? Number(m[1]) : 0;
}

function uptime(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ps's STIME: the time for today's processes, month and day for this year's, else the year. */
function stime(startSec: number, now: Date): string {
  const d = new Date(startSec * 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  if (d.getFullYear() !== now.getFullYear()) return String(d.getFullYear());
  if (d.getMonth() === now.getMonth() && d.getDate() === now.getDate())
    return `${two(d.getHours())}:${two(d.getMinutes())}`;
  return `${MONTHS[d.getMonth()]}${two(d.getDate())}`;
}

/** ps's TIME: cumulative CPU time as [DD-]HH:MM:SS. */
function cpuTime(ticks: number): string {
  const total = Math.floor(ticks / CLOCK_TICKS);
  const two = (n: number): string => String(n).padStart(2, '0');
  const days = Math.floor(total / 86400);
  const hms = `${two(Math.floor((total % 86400) / 3600))}:${two(Math.floor((total % 3600) / 60))}:${two(total % 60)}`;
  return days > 0 ? `${days}-${hms}` : hms;
}

/** ps's TTY: pts/N for pseudo-terminals (majors 136-143), ttyN for consoles, else "?". */
function ttyName(ttyNr: number): string {
  if (ttyNr === 0) return '?';
  const major = (ttyNr >> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return `pts/${(major - 136) * 256 + minor}`;
  if (major === 4 && minor < 64) return `tty${minor}`;
  if (major === 4) return `ttyS${minor - 64}`;
  return '?';
}

function uidOf(pid: number): number | undefined {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function commandLine(pid: number, st: ProcStat): string {
  let cmd = '';
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
  } catch {
    // Gone meanwhile: the name from stat stands in.
  }
  if (cmd === '') cmd = `[${st.comm}]`;
  return st.state === 'Z' ? `${cmd} <defunct>` : cmd;
}

/** One `ps -ef` row, or undefined if the process ended meanwhile. */
function psEfRow(
  pid: number,
  boot: number,
  up: number,
  now: Date,
  names: Map<number, string>,
): string[] | undefined {
  const st = readStat(pid);
  const uid = uidOf(pid);
  if (!st || uid === undefined) return undefined;
  let user = names.get(uid);
  if (user === undefined) {
    user = lookupUser(uid)?.name ?? String(uid);
    names.set(uid, user);
  }
  const ticks = st.utime + st.stime;
  const elapsed = up - st.startTime / CLOCK_TICKS;
  // ps's C: integer percent of the process's life spent on a CPU, capped at 99.
  const c = elapsed > 0 ? Math.min(99, Math.floor((ticks / CLOCK_TICKS / elapsed) * 100)) : 0;
  return [
    user,
    String(pid),
    String(st.ppid),
    String(c),
    stime(boot + st.startTime / CLOCK_TICKS, now),
    ttyName(st.ttyNr),
    cpuTime(ticks),
    commandLine(pid, st),
  ];
}

/** Whitespace-separated fields, as docker splits ps's output and arguments. */
function fields(line: string): string[] {
  return line.split(/[ \t]+/).filter((f) => f !== '');
}

/** Rows of the host's `ps ARGS` whose PID column is one of the container's, the command kept whole. */
export function filterPsOutput(text: string, pids: readonly number[]): TopResult {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const titles = fields(lines[0] ?? '');
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) {
    throw new HutchError('BAD_FLAG', "couldn't find PID field in ps output", {
      hint: 'Keep the PID column in the ps options (e.g. `-o pid,comm`).',
    });
  }
  const wanted = new Set(pids);
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const f = fields(line);
    const pid = Number(f[pidIndex]);
    if (!Number.isInteger(pid) || !wanted.has(pid)) continue;
    // The last column (the command) may hold spaces: it takes the rest of the line.
    processes.push(
      f.length > titles.length ? [...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(' ')] : f,
    );
  }
  return { titles, processes };
}

export function topContainer(c: Containers, ref: string, psArgs: readonly string[]): TopResult {
  const rec = runningContainer(c, ref, '`top`');
  const pids = containerPids(rec);
  if (pids.length === 0) throw noLonger(rec);
  if (psArgs.length === 0) {
    const boot = bootTime();
    const up = uptime();
    const now = new Date();
    const names = new Map<number, string>();
    const processes = pids
      .map((p) => psEfRow(p, boot, up, now, names))
      .filter((r): r is string[] => r !== undefined);
    return { titles: PS_EF_TITLES, processes };
  }
  // docker hands ps the options split at whitespace, whether given as one word or several.
  const args = psArgs.flatMap(fields);
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync('ps', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) {
    throw new HutchError('PS_FAILED', `cannot run ps: ${r.error.message}`, {
      hint: 'Install procps (apt install procps), or leave out the ps options.',
    });
  }
  if (r.status !== 0) {
    throw new HutchError('PS_FAILED', `ps ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`, {
      hint: 'Check the options against `man ps`.',
    });
  }
  return filterPsOutput(r.stdout, pids);
}

function noLonger(rec: ContainerRecord): HutchError {
  return new HutchError('CONTAINER_NOT_RUNNING', `container ${rec.name} is not running`, {
    hint: 'Its processes ended just now.',
  });
}
