/**
 * `system check` for fuse-overlayfs daemons. Each mounted container root
 * (or image view) of the fuse-overlayfs driver is served by a process of
 * its own, which ends when its mount is taken off. One that serves a mount
 * this namespace does not see is leaked: its namespace was left behind (the
 * pause process killed; the daemon alone keeps that namespace alive), or it
 * lost its mount in a way it did not notice. Nothing can reach its files,
 * so ending it loses nothing. Mounts that are visible but belong to no
 * running container are the container checker's: unmounting them ends
 * their daemons.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { parseMountInfo } from '../../host/cgroups.ts';
import { daemonsUnder, reapDaemons, waitForExit } from '../../storage/drivers/fuse-overlayfs-tool.ts';
import type { FuseDaemon } from '../../storage/drivers/fuse-overlayfs-tool.ts';
import type { Finding } from '../check.ts';

/** Long enough for a daemon whose mount was just taken off (by this check's repairs) to exit. */
const SETTLE_MS = 500;

function mountedHere(): Set<string> {
  try {
    return new Set(parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).map((m) => m.mountPoint));
  } catch {
    return new Set();
  }
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * What a daemon serves, from its mount point: a container's root
 * (containers/ID/merged) or an image view of a command (views/PID-HEX).
 */
function servedBy(home: string, mountPoint: string): { container: string } | { pid: number } | undefined {
  const [kind, name] = mountPoint.slice(home.length + 1).split('/');
  if (kind === 'containers' && name) return { container: name };
  if (kind === 'views' && name) return { pid: Number(name.split('-')[0]) };
  return undefined;
}

/**
 * Daemons of this store whose mount point is not mounted in this
 * namespace, and whose user is gone: a running container keeps its root in
 * the namespace it started in even after that namespace's pause process
 * died, and a live command keeps its view.
 */
function unmountedDaemons(home: string, running: (id: string) => boolean): FuseDaemon[] {
  const mounted = mountedHere();
  const realHome = realOrSelf(home);
  return daemonsUnder(home).filter((d) => {
    if (mounted.has(realHome + d.mountPoint.slice(home.length))) return false;
    const user = servedBy(home, d.mountPoint);
    if (user && 'container' in user) return !running(user.container);
    if (user && Number.isInteger(user.pid) && user.pid > 0) return !existsSync(`/proc/${user.pid}`);
    return true;
  });
}

/** `running`: whether the container with this ID runs (its record says so and its conmon lives). */
export function checkFuseDaemons(root: string, repair: boolean, running: (id: string) => boolean): Finding[] {
  const home = join(root, 'storage', 'fuse-overlayfs');
  const first = unmountedDaemons(home, running);
  if (first.length === 0) return [];
  // One that is still mounting, or just lost its mount and is on its way out, is not a leak.
  waitForExit(first, SETTLE_MS);
  const second = new Set(unmountedDaemons(home, running).map((d) => d.pid));
  const leaked = first.filter((d) => second.has(d.pid));
  if (repair) reapDaemons(leaked, 0);
  return leaked.map((d) => ({
    severity: 'problem',
    what: `fuse-overlayfs ${d.pid}`,
    detail: `it serves ${d.mountPoint}, which is not mounted in hutch's namespace and nothing running uses it (left by an ended namespace or a killed command); --repair ends it`,
    repaired: repair,
  }));
}
