/**
 * The per-user supervisor: the one long-lived hutch process, and only while
 * some running container has a healthcheck. It runs each container's check
 * on its interval and records the result. All its state is in the
 * container records, so it can be killed and started again at any time
 * without touching containers; a kernel lock (RUNROOT/supervisor.lock) keeps
 * it to one per store. Restart policies need no supervisor: conmon's exit
 * command applies them when a container ends.
 */
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { lockFile } from '../../sys/lock.ts';
import { log } from '../../util/log.ts';
import { checkAndRecord, healthCommand } from './health.ts';
import type { Containers } from './open.ts';
import { isRunning } from './stop.ts';
import { conmonEnv, selfCommand } from './start.ts';

const TICK_MS = 250;
/** How long the supervisor stays after the last container with a healthcheck went away. */
const LINGER_MS = 5_000;

export function supervisorLockPath(c: Containers): string {
  return join(c.ctx.paths.runroot, 'supervisor.lock');
}

/** Starts the supervisor in the background unless one runs already. */
export function ensureSupervisor(c: Containers): void {
  const probe = lockFile(supervisorLockPath(c), { wait: false });
  if (!probe) return; // held: a supervisor runs
  probe.release();
  const { spawn } = process.getBuiltinModule('node:child_process');
  const logFd = openSync(join(c.ctx.paths.runroot, 'supervisor.log'), 'a', 0o600);
  const [bin, ...globals] = selfCommand(c);
  const child = spawn(bin!, [...globals, 'system', 'supervise'], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: conmonEnv(),
  });
  child.unref();
}

export async function supervise(c: Containers): Promise<void> {
  const lock = lockFile(supervisorLockPath(c), { wait: false });
  if (!lock) return; // another supervisor won the race
  const due = new Map<string, number>();
  const busy = new Set<string>();
  let idleSince = Date.now();
  try {
    for (;;) {
      const now = Date.now();
      const watched = c.store.list().filter((r) => healthCommand(r) && isRunning(c, r));
      if (watched.length > 0) idleSince = now;
      else if (now - idleSince > LINGER_MS) return;
      for (const rec of watched) {
        const key = `${rec.id}@${rec.state.startedAt}`;
        const cfg = rec.config.healthcheck!;
        if (!due.has(key)) due.set(key, Date.parse(rec.state.startedAt) + (cfg.intervalMs || 30_000));
        if (busy.has(rec.id) || now < due.get(key)!) continue;
        busy.add(rec.id);
        due.set(key, now + (cfg.intervalMs || 30_000));
        checkAndRecord(c, rec.id)
          .catch((e: unknown) => log.debug(`healthcheck of ${rec.name}: ${(e as Error).message}`))
          .finally(() => busy.delete(rec.id));
      }
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
  } finally {
    lock.release();
  }
}
