/**
 * The user's namespace: one user + mount namespace per user, built once with
 * newuidmap/newgidmap and kept alive by a pause process; every later command
 * joins it (the native launcher does the join before Node starts, see
 * ARCHITECTURE.md "Start-up"). A command that finds itself outside builds the
 * namespace if needed, then re-executes itself through the launcher.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Paths } from '../config/paths.ts';
import { ensurePrivateDir } from '../config/paths.ts';
import { lookupUser } from '../host/passwd.ts';
import { identity } from '../sys/identity.ts';
import { isLiveProcess } from '../sys/proc.ts';
import { helperPath } from '../sys/native-paths.ts';
import { execve } from '../sys/execve.ts';
import { HutchError } from '../util/errors.ts';
import { log } from '../util/log.ts';
import { namespaceMap, parseSubIdFile, rangesFor, totalIds } from './subid.ts';
import type { SubIdEntry } from './subid.ts';

export const PAUSE_NAME = 'hutch-pause';

export interface IdMapping {
  /** newuidmap-style triples: inside outside count. */
  uid: number[];
  gid: number[];
  /** True when no sub-ids were found and only the user's own id is mapped. */
  single: boolean;
}

function readSubIds(file: string, who: { name?: string | undefined; id: number }): SubIdEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const parsed = parseSubIdFile(text, file);
  for (const p of parsed.problems) log.warn(`${p.file}:${p.line}: ${p.reason}: ${p.text}`);
  return rangesFor(parsed, who);
}

export function plannedMapping(uid: number, gid: number, etc = '/etc'): IdMapping {
  const name = lookupUser(uid, join(etc, 'passwd'))?.name ?? process.env.USER;
  const subuids = readSubIds(join(etc, 'subuid'), { name, id: uid });
  const subgids = readSubIds(join(etc, 'subgid'), { name, id: uid });
  if (subuids.length === 0 || subgids.length === 0) {
    return { uid: [0, uid, 1], gid: [0, gid, 1], single: true };
  }
  if (totalIds(subuids) < 65536 || totalIds(subgids) < 65536) {
    log.warn(`fewer than 65536 sub-ids for ${name ?? uid}: images using higher ids will fail to unpack`);
  }
  return { uid: namespaceMap(uid, subuids), gid: namespaceMap(gid, subgids), single: false };
}

export function pausePidFile(paths: Paths): string {
  return join(paths.runroot, 'pause.pid');
}

/** The pause process's pid when it is alive and ours, as the launcher checks it. */
export function livePausePid(paths: Paths): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pausePidFile(paths), 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  return isLiveProcess(pid, PAUSE_NAME) ? pid : undefined;
}

/**
 * A process still inside this store's namespace after the pause process
 * died: a running container's conmon (its command line names the store's
 * runroot). Adopting its namespaces keeps running containers and their
 * mounts reachable; a new namespace would strand them.
 */
export function findAdoptable(paths: Paths, uid: number): number | undefined {
  const { readdirSync, statSync } = process.getBuiltinModule('node:fs');
  const marker = `--root=${join(paths.runroot, 'oci')}/`;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (statSync(`/proc/${name}`).uid !== uid) continue;
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() !== 'conmon') continue;
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => a.startsWith(marker)) && isLiveProcess(Number(name))) return Number(name);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

/** Builds the namespace (idempotent: the helper re-checks under a lock). */
export function createNamespace(paths: Paths): number {
  const ident = identity();
  ensurePrivateDir(paths.runroot);
  const map = plannedMapping(ident.uid, ident.gid);
  if (map.single) {
    log.warn(
      `no sub-id ranges for uid ${ident.uid} in /etc/subuid and /etc/subgid: only your own id is mapped, ` +
        'so images with files owned by other users will not unpack. Fix: sudo hutch setup --user $(id -un)',
    );
  }
  const spec = (triples: number[], own: number): string =>
    map.single ? `direct:${own}` : `tool:${triples.join(' ')}`;
  // Loaded here, not at the top: child_process costs milliseconds to load and
  // is needed only on the first command after boot.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const adopt = findAdoptable(paths, ident.uid);
  if (adopt !== undefined)
    log.info(`the pause process was gone; rejoining the namespace of running containers (conmon ${adopt})`);
  const r = spawnSync(
    helperPath(),
    [
      'mkns',
      pausePidFile(paths),
      spec(map.uid, ident.uid),
      spec(map.gid, ident.gid),
      ...(adopt !== undefined ? [String(adopt)] : []),
    ],
    { encoding: 'utf8' },
  );
  if (r.error) {
    throw new HutchError('NAMESPACE', `cannot run ${helperPath()}: ${r.error.message}`, {
      hint: 'Build the native helper: sh native/build.sh (needs gcc).',
    });
  }
  if (r.status !== 0) {
    throw new HutchError('NAMESPACE', `cannot create the user namespace: ${r.stderr.trim()}`, {
      hint: 'Run `hutch doctor` to see which prerequisite is missing (sub-ids, newuidmap, user namespaces).',
    });
  }
  return Number(r.stdout.trim());
}

/**
 * Makes sure this process runs inside the user's namespace: returns at once
 * when rootful or already inside; otherwise builds the namespace and replaces
 * this process with a fresh hutch that the launcher moves inside.
 */
export function enterNamespace(paths: Paths): void {
  const ident = identity();
  if (!ident.rootless || ident.inUserNamespace) return;
  if (process.env.HUTCH_REEXEC === '1') {
    throw new HutchError('NAMESPACE', 'hutch re-executed itself but is still outside the user namespace', {
      hint: 'The launcher could not join the pause process: run `hutch system migrate`, then `hutch doctor`.',
    });
  }
  createNamespace(paths);
  const env = { ...process.env, HUTCH_REEXEC: '1' } as Record<string, string>;
  delete env.HUTCH_NO_JOIN;
  delete env.HUTCH_JOINED;
  env.HUTCH_NODE ??= process.execPath;
  execve(helperPath(), ['hutch-helper', 'run', ...process.argv.slice(2)], env);
}

/** Ends the pause process (containers must be stopped first). */
export function stopPause(paths: Paths): boolean {
  const pid = livePausePid(paths);
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    // Gone before this returns: whoever asks next must not find it (the kill takes a moment under load).
    const until = Date.now() + 2000;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    while (isLiveProcess(pid) && Date.now() < until) Atomics.wait(nap, 0, 0, 2);
  }
  rmSync(pausePidFile(paths), { force: true });
  return pid !== undefined;
}
