/**
 * What user-mode networking may leave behind when a command is killed at the
 * wrong moment: namespace files (and their pid, socket and log files) under
 * RUNROOT/netns, and pasta or slirp4netns processes working on one. `system
 * check` asks for them by container ID and ends those of containers that do
 * not run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { detachNetwork, isNetworkHelper } from './attach.ts';
import { netnsDir } from './netns.ts';

const ID = /^([0-9a-f]{64})(?:\.(?:pid|log))?$/;
/** Sockets are named by the short ID (see helperFiles in attach.ts). */
const SHORT = /^([0-9a-f]{12})\.(?:sock|handoff(?:\.keep|\.new)?)$/;

export interface NetworkLeftovers {
  files: string[];
  /** Network helpers (pasta, slirp4netns, hutch-portfwd, hutch-handoff) whose command line names one of the container's files there. */
  helpers: number[];
}

/** Everything under RUNROOT/netns and every helper on it, by container ID. */
export function networkLeftovers(runroot: string): Map<string, NetworkLeftovers> {
  const dir = netnsDir(runroot);
  const out = new Map<string, NetworkLeftovers>();
  const entry = (id: string): NetworkLeftovers => {
    let e = out.get(id);
    if (!e) out.set(id, (e = { files: [], helpers: [] }));
    return e;
  };
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    // No container has had a user-mode network since boot.
  }
  const ids = names.flatMap((n) => ID.exec(n)?.[1] ?? []);
  // A short ID stands for the full one of the same container when its files are there, else for itself.
  const idOf = (name: string): string | undefined => {
    const full = ID.exec(name)?.[1];
    if (full) return full;
    const short = SHORT.exec(name)?.[1];
    return short ? (ids.find((i) => i.startsWith(short)) ?? short) : undefined;
  };
  for (const n of names) {
    const id = idOf(n);
    if (id) entry(id).files.push(`${dir}/${n}`);
  }
  const prefix = `${dir}/`;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (!isNetworkHelper(readFileSync(`/proc/${p}/comm`, 'utf8').trim())) continue;
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const ns = argv.find((a) => a.startsWith(prefix));
      const id = ns ? idOf(ns.slice(prefix.length)) : undefined;
      if (id) entry(id).helpers.push(Number(p));
    } catch {
      // Ended meanwhile, or not ours to read.
    }
  }
  return out;
}

/** Ends the helpers and removes the files of one container's network. */
export function removeLeftovers(
  paths: { root: string; runroot: string },
  id: string,
  left: NetworkLeftovers,
): void {
  for (const pid of left.helpers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  detachNetwork(paths, id, undefined);
}
