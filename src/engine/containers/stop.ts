/**
 * stop, kill and the waiting they need. Without a daemon, "has it exited?"
 * is answered by conmon: it lives exactly as long as the container.
 */
import { existsSync } from 'node:fs';
import { monitorAlive, observedState } from '../../runtime/containers/liveness.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { parseSignal } from '../../runtime/oci/signals.ts';
import { HutchError } from '../../util/errors.ts';
import { releaseExited } from './cleanup.ts';
import type { Containers } from './open.ts';

export function isRunning(c: Containers, rec: ContainerRecord): boolean {
  const s = observedState(rec, c.store.exitFile(rec.id)).status;
  return s === 'running' || s === 'paused';
}

/** Waits until the container's exit is recorded (or its conmon is gone); false on timeout. */
export async function waitForMonitor(
  rec: ContainerRecord,
  timeoutMs: number,
  exitFile: string,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  while (monitorAlive(rec.state) && !existsSync(exitFile)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(1, deadline - Date.now()))));
    delay = Math.min(delay * 2, 50);
  }
  return true;
}

export async function stopContainer(
  c: Containers,
  ref: string,
  timeoutSec: number | undefined,
): Promise<ContainerRecord> {
  let rec = c.store.get(ref);
  if (!isRunning(c, rec)) {
    releaseExited(c, rec.id);
    return rec;
  }
  rec = c.store.update(rec.id, (r) => {
    r.state.stoppedByUser = true;
  });
  const runtime = c.runtime(rec.runtime);
  if (rec.state.status === 'paused') runtime.resume(rec.id);
  const timeout = timeoutSec ?? rec.config.stopTimeout;
  if (timeout > 0) {
    runtime.kill(rec.id, parseSignal(rec.config.stopSignal).name);
    if (await waitForMonitor(rec, timeout * 1000, c.store.exitFile(rec.id))) {
      releaseExited(c, rec.id);
      return rec;
    }
  }
  runtime.kill(rec.id, 'SIGKILL');
  if (!(await waitForMonitor(rec, 10_000, c.store.exitFile(rec.id)))) {
    throw new HutchError('STOP_FAILED', `container ${rec.name} did not stop after SIGKILL`, {
      hint: 'Check its processes with `hutch top`; a process in uninterruptible sleep cannot be killed.',
    });
  }
  releaseExited(c, rec.id);
  return rec;
}

export function killContainer(c: Containers, ref: string, signal: string): ContainerRecord {
  const rec = c.store.get(ref);
  if (!isRunning(c, rec)) {
    throw new HutchError('CONTAINER_NOT_RUNNING', `cannot kill container ${rec.name}: it is not running`, {
      hint: 'Start it with `hutch start`.',
    });
  }
  const sig = parseSignal(signal);
  if (sig.name === 'SIGKILL' || sig.name === 'SIGTERM') {
    c.store.update(rec.id, (r) => {
      r.state.stoppedByUser = true;
    });
  }
  c.runtime(rec.runtime).kill(rec.id, sig.name);
  return rec;
}
