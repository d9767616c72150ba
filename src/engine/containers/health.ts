/**
 * Healthchecks without systemd: one check is an exec of the container's
 * health command with a timeout; its result goes into the record (status,
 * failing streak, the last five results), where `ps` and `inspect` read it.
 * The per-user supervisor (supervisor.ts) runs checks on schedule.
 */
import { randomHex } from '../../util/random.ts';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerRecord, HealthState } from '../../runtime/containers/types.ts';
import type { OciSpec } from '../../runtime/spec.ts';
import { HutchError } from '../../util/errors.ts';
import { writeJsonAtomic } from '../../util/fs-atomic.ts';
import type { Containers } from './open.ts';
import { isRunning } from './stop.ts';

const KEEP_RESULTS = 5;
const MAX_OUTPUT = 4096;

export interface CheckResult {
  exitCode: number;
  output: string;
  start: string;
  end: string;
}

export function healthCommand(rec: ContainerRecord): string[] | undefined {
  const test = rec.config.healthcheck?.test;
  if (!test || test.length === 0 || test[0] === 'NONE') return undefined;
  if (test[0] === 'CMD-SHELL') return ['/bin/sh', '-c', test.slice(1).join(' ')];
  if (test[0] === 'CMD') return test.slice(1);
  return test;
}

/** Runs the health command once in the running container, killed after the timeout. */
export async function runCheck(c: Containers, rec: ContainerRecord): Promise<CheckResult> {
  const cmd = healthCommand(rec);
  if (!cmd) throw new HutchError('NO_HEALTHCHECK', `container ${rec.name} has no healthcheck`);
  const start = new Date().toISOString();
  const bundle = c.store.bundle(rec.id);
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as OciSpec;
  const file = join(bundle, `health-${randomHex(6)}.json`);
  writeJsonAtomic(file, { ...spec.process, terminal: false, args: cmd }, 0o600);
  const runtime = c.runtime(rec.runtime);
  const { spawn } = process.getBuiltinModule('node:child_process');
  const child = spawn(runtime.path, [...runtime.globalArgs(), 'exec', '--process', file, rec.id], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const take = (d: Buffer): void => {
    if (output.length < MAX_OUTPUT) output += d.toString('utf8');
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const timeoutMs = rec.config.healthcheck!.timeoutMs || 30_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const exitCode = await new Promise<number>((resolve) => {
    child.on('exit', (code) => resolve(code ?? 1));
    child.on('error', () => resolve(1));
  });
  clearTimeout(timer);
  rmSync(file, { force: true });
  return {
    exitCode: timedOut ? -1 : exitCode,
    output: timedOut ? `Health check exceeded timeout (${timeoutMs / 1000}s)` : output.slice(0, MAX_OUTPUT),
    start,
    end: new Date().toISOString(),
  };
}

/** docker's rules: healthy at the first success; unhealthy after `retries` failures in a row, not counting failures in the start period. */
export function nextHealth(prev: HealthState | undefined, rec: ContainerRecord, r: CheckResult): HealthState {
  const h: HealthState = prev
    ? { ...prev, log: [...prev.log] }
    : { status: 'starting', failingStreak: 0, log: [] };
  h.log.push({ start: r.start, end: r.end, exitCode: r.exitCode, output: r.output });
  if (h.log.length > KEEP_RESULTS) h.log.splice(0, h.log.length - KEEP_RESULTS);
  if (r.exitCode === 0) {
    h.status = 'healthy';
    h.failingStreak = 0;
    return h;
  }
  const cfg = rec.config.healthcheck!;
  const inStartPeriod = Date.parse(r.start) - Date.parse(rec.state.startedAt) < cfg.startPeriodMs;
  if (inStartPeriod && h.status === 'starting') return h;
  h.failingStreak += 1;
  if (h.failingStreak >= Math.max(1, cfg.retries)) h.status = 'unhealthy';
  return h;
}

/** One check, recorded; returns the new health state (for `hutch healthcheck run`). */
export async function checkAndRecord(c: Containers, ref: string): Promise<HealthState> {
  const rec = c.store.get(ref);
  if (!isRunning(c, rec)) {
    throw new HutchError('CONTAINER_NOT_RUNNING', `container ${rec.name} is not running`);
  }
  const result = await runCheck(c, rec);
  let state: HealthState | undefined;
  c.store.update(rec.id, (r) => {
    // The container may have been restarted meanwhile: a result belongs to the run it checked.
    if (r.state.startedAt !== rec.state.startedAt) return;
    r.state.health = nextHealth(r.state.health, r, result);
    state = r.state.health;
  });
  return state ?? rec.state.health ?? { status: 'starting', failingStreak: 0, log: [] };
}
