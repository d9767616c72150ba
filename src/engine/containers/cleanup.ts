/**
 * After a container's process ends: release its root, forget it in the
 * runtime, record how it ended, remove it (--rm) or restart it (--restart).
 * conmon runs this as its exit command (`hutch container cleanup ID`); a
 * foreground `run` does the same itself when it sees the exit, and whichever
 * comes second finds nothing left to do. Restart policies are applied only
 * by the exit command, so an exit is never acted on twice.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { observedState } from '../../runtime/containers/liveness.ts';
import { hideRoot } from '../../runtime/containers/mapped-root.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { detachNetwork } from '../../network/attach.ts';
import { lockFile } from '../../sys/lock.ts';
import type { Lock } from '../../sys/lock.ts';
import { errnoCode, HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import type { Containers } from './open.ts';
import { removeContainer } from './remove.ts';
import { startContainer } from './start.ts';

export interface CleanupResult {
  rec: ContainerRecord | undefined;
  removed: boolean;
  restart: boolean;
}

/** The container's lock, or undefined when the container was removed meanwhile. */
export function lockContainer(c: Containers, id: string): Lock | undefined {
  try {
    return lockFile(c.store.lockPath(id));
  } catch (e) {
    // Removed meanwhile (the foreground `run --rm` and conmon's exit command both clean up): nothing left.
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Releases what an ended container held: its root's mount and the runtime's
 * state; records the exit. The caller holds the container's lock. Returns
 * false when the container still runs (or the exit is another monitor's).
 */
export function releaseLocked(
  c: Containers,
  rec: ContainerRecord,
  background = false,
  monitorPid?: number,
): boolean {
  const id = rec.id;
  const s = rec.state;
  // The exit of a monitor this container no longer has (it was started again since) is old news.
  if (monitorPid !== undefined && s.conmonPid !== 0 && s.conmonPid !== monitorPid) return false;
  // The exit as `ps` sees it (exit file, else a monitor that is gone), made the record's.
  const stored = JSON.stringify(s);
  const now = observedState(rec, c.store.exitFile(id));
  if (now.status === 'running' || now.status === 'paused') return false;
  if (now !== s) rec.state = { ...now, rootfs: undefined, health: s.health ? { ...s.health } : undefined };
  const runtime = c.runtime(rec.runtime);
  try {
    // A foreground command's exit hook deletes it in the runtime (native/helper.c, exit-hook).
    if (!background && existsSync(join(runtime.root, id))) runtime.delete(id);
  } catch (e) {
    log.warn(`${rec.name}: ${(e as Error).message}`);
  }
  if (rec.idMappings) hideRoot(c.store.bundle(id));
  c.images.driver.unmountContainer(id);
  detachNetwork(c.ctx.paths, id, rec.state.network);
  rec.state.rootfs = undefined;
  rec.state.network = undefined;
  // Released before (a `run --rm` releases, then removes): the record already says so.
  if (JSON.stringify(rec.state) !== stored) c.store.write(rec);
  return true;
}

/** Releases what an ended container held; under its lock. Returns the record as now stored. */
export function releaseExited(
  c: Containers,
  id: string,
  background = false,
  monitorPid?: number,
): ContainerRecord | undefined {
  const lock = lockContainer(c, id);
  if (!lock) return undefined;
  try {
    const rec = c.store.read(id);
    if (!rec) return undefined;
    try {
      releaseLocked(c, rec, background, monitorPid);
    } catch (e) {
      // Removed while we waited for the lock's holder to finish: nothing left to release.
      if (errnoCode(e) === 'ENOENT' && !existsSync(c.store.recordPath(id))) return undefined;
      throw e;
    }
    return rec;
  } finally {
    lock.release();
  }
}

function restartWanted(rec: ContainerRecord): boolean {
  const p = rec.hostConfig.restartPolicy;
  if (rec.state.stoppedByUser || rec.state.status !== 'exited') return false;
  if (p.name === 'always' || p.name === 'unless-stopped') return true;
  if (p.name === 'on-failure') {
    return (
      rec.state.exitCode !== 0 && (p.maximumRetryCount === 0 || rec.state.restartCount < p.maximumRetryCount)
    );
  }
  return false;
}

/** docker's back-off: 100 ms, doubling per restart, at most a minute; reset after 10 s of running. */
export function restartDelay(rec: ContainerRecord): number {
  const ran = Date.parse(rec.state.finishedAt) - Date.parse(rec.state.startedAt);
  if (ran > 10_000) return 100;
  return Math.min(60_000, 100 * 2 ** Math.min(rec.state.restartCount, 10));
}

export async function cleanupContainer(
  c: Containers,
  id: string,
  fromMonitor: boolean,
): Promise<CleanupResult> {
  // The exit hook says which conmon ended; a foreground run of a --rm container need not wait for the runtime's delete.
  const monitor = fromMonitor ? Number(process.env.HUTCH_MONITOR_PID) || undefined : undefined;
  const background = !fromMonitor && c.store.read(id)?.hostConfig.autoRemove === true;
  const rec = releaseExited(c, id, background, monitor);
  if (!rec) return { rec: undefined, removed: false, restart: false };
  if (rec.state.status === 'running' || rec.state.status === 'paused')
    return { rec, removed: false, restart: false };
  // The exit of a monitor the container no longer has (it was started again since) is old news.
  if (monitor !== undefined && rec.state.conmonPid !== 0 && rec.state.conmonPid !== monitor) {
    return { rec, removed: false, restart: false };
  }
  if (rec.hostConfig.autoRemove) {
    removeContainer(c, rec.id, { force: true, volumes: true, hookDeletes: background });
    return { rec, removed: true, restart: false };
  }
  if (!fromMonitor || !restartWanted(rec)) return { rec, removed: false, restart: false };
  const delay = restartDelay(rec);
  await new Promise((r) => setTimeout(r, delay));
  // The user may have stopped, removed or started it while we waited.
  const now = c.store.read(id);
  if (
    !now ||
    now.state.stoppedByUser ||
    now.state.status !== 'exited' ||
    now.state.finishedAt !== rec.state.finishedAt
  ) {
    return { rec: now, removed: false, restart: false };
  }
  c.store.update(id, (r) => {
    r.state.restartCount += 1;
  });
  try {
    const started = await startContainer(c, id, { kind: 'detached' });
    started.conmon.release();
  } catch (e) {
    throw new HutchError('RESTART_FAILED', `restarting ${rec.name} failed: ${(e as Error).message}`);
  }
  return { rec, removed: false, restart: true };
}
