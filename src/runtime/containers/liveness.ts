/**
 * Is a container's monitor still there? hutch has no daemon watching
 * containers, so every command decides from the facts on disk: a record that
 * says "running" is believed only while its conmon lives (same pid and same
 * start time, so a reused pid is not mistaken for it). Otherwise the
 * container has exited, and conmon's exit file (if it got to write one) says
 * how.
 */
import { readFileSync, statSync } from 'node:fs';
import { processStart } from '../../sys/process.ts';
import type { ContainerRecord, ContainerState } from './types.ts';

export { processStart };

export function monitorAlive(state: ContainerState): boolean {
  const start = processStart(state.conmonPid);
  return start !== undefined && start === state.conmonStart;
}

export interface ExitInfo {
  code: number;
  at: string;
}

/** conmon's exit file: the exit code as text, written when the container ended. */
export function readExitFile(path: string): ExitInfo | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    const code = Number(text);
    if (text === '' || !Number.isInteger(code)) return undefined;
    return { code, at: statSync(path).mtime.toISOString() };
  } catch {
    return undefined;
  }
}

/**
 * The state as it really is: a running or paused record whose monitor is
 * gone is exited, with the code from the exit file (or 255 and an error when
 * the monitor died without writing one).
 */
export function observedState(rec: Pick<ContainerRecord, 'state'>, exitFile: string): ContainerState {
  const s = rec.state;
  if (s.status !== 'running' && s.status !== 'paused') return s;
  // conmon writes the exit file, then lives on briefly to run the exit command:
  // the file, when present, is the truth (each start removes the previous one).
  const exit = readExitFile(exitFile);
  if (!exit && monitorAlive(s)) return s;
  return {
    ...s,
    status: 'exited',
    pid: 0,
    exitCode: exit?.code ?? 255,
    finishedAt: exit?.at ?? new Date().toISOString(),
    error: exit ? s.error : 'the container monitor (conmon) ended without recording an exit code',
  };
}
