/** `hutch rm`: stop if forced, release the root, remove record, bundle and (-v) anonymous volumes. */
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import { lockContainer, releaseLocked } from './cleanup.ts';
import type { Containers } from './open.ts';
import { isRunning, waitForMonitor } from './stop.ts';

export interface RemoveOptions {
  force: boolean;
  volumes: boolean;
  /** The container's exit hook deletes it in the runtime (a foreground run): do not wait for that here. */
  hookDeletes?: boolean;
}

export function removeContainer(c: Containers, id: string, opts: RemoveOptions): ContainerRecord | undefined {
  // Under the container's lock from the check to the end: an exit being cleaned up at the same
  // time finishes first, or finds the container gone.
  const lock = lockContainer(c, id);
  if (!lock) return undefined;
  let rec: ContainerRecord | undefined;
  try {
    rec = c.store.read(id);
    if (!rec) return undefined;
    if (isRunning(c, rec)) {
      throw new HutchError('CONTAINER_RUNNING', `cannot remove container ${rec.name}: it is running`, {
        hint: 'Stop it first (hutch stop), or force the removal with -f.',
      });
    }
    releaseLocked(c, rec, opts.hookDeletes === true);
    c.images.driver.removeContainer(id);
    c.store.remove(id, rec.name);
  } finally {
    lock.release();
  }
  if (opts.volumes) {
    for (const m of rec.hostConfig.mounts) {
      if (m.type !== 'volume' || !m.options.includes('anonymous') || !m.name) continue;
      try {
        c.volumes.remove(m.name, { force: true });
      } catch (e) {
        log.warn(`volume ${m.name} kept: ${(e as Error).message}`);
      }
    }
  }
  return rec;
}

/** rm -f: kill a running container first. */
export async function forceRemove(
  c: Containers,
  ref: string,
  volumes: boolean,
): Promise<ContainerRecord | undefined> {
  const rec = c.store.find(ref);
  if (!rec) return undefined;
  if (isRunning(c, rec)) {
    c.store.update(rec.id, (r) => {
      r.state.stoppedByUser = true;
      r.hostConfig.restartPolicy = { name: 'no', maximumRetryCount: 0 };
    });
    const runtime = c.runtime(rec.runtime);
    if (rec.state.status === 'paused') {
      try {
        runtime.resume(rec.id);
      } catch {
        // Killing a frozen container still works on cgroup v2; on v1 SIGKILL is queued until thaw.
      }
    }
    runtime.kill(rec.id, 'SIGKILL');
    if (!(await waitForMonitor(rec, 10_000, c.store.exitFile(rec.id)))) {
      throw new HutchError('STOP_FAILED', `container ${rec.name} did not stop after SIGKILL`);
    }
  }
  return removeContainer(c, rec.id, { force: true, volumes });
}
