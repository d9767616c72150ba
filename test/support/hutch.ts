/**
 * Runs the real hutch (bin/hutch, the built bundle, the native launcher) in
 * an isolated store per test: its own --root and --runroot, so its own pause
 * process, which cleanup() ends by pid.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isLiveProcess } from '../../src/sys/proc.ts';

export { isLiveProcess };

export const PROJECT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
export const HUTCH = join(PROJECT, 'bin/hutch');

export interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

export interface Sandbox {
  root: string;
  runroot: string;
  dir: string;
  env: NodeJS.ProcessEnv;
  hutch(args: string[], opts?: SpawnSyncOptions & { env?: NodeJS.ProcessEnv }): Result;
  pausePid(): number | undefined;
  /** What `hutch system check` calls problems (not garbage); fails the test if the check cannot run. */
  problems(): { severity: string; what: string; detail: string }[];
  cleanup(): void;
}

/** SIGKILL a process we started and wait until the kernel has ended it. */
export function killAndWait(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  const until = Date.now() + 5000;
  while (isLiveProcess(pid) && Date.now() < until)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
}

export function runHutch(args: string[], env: NodeJS.ProcessEnv, opts: SpawnSyncOptions = {}): Result {
  // SIGKILL at the timeout: Node answers SIGTERM itself (it restores the terminal
  // first), so a command stuck on a daemon that stopped answering (zfs-fuse) outlived it.
  const r = spawnSync(HUTCH, args, {
    encoding: 'utf8',
    env,
    timeout: 120_000,
    killSignal: 'SIGKILL',
    ...opts,
  });
  return { status: r.status ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** runHutch without blocking the event loop: for tests that serve the container from this process. */
export function runHutchAsync(args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(HUTCH, args, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

/** `under`: the directory to make the sandbox in (a filesystem of the test's choosing); the system's temp by default. */
export function sandbox(extraEnv: NodeJS.ProcessEnv = {}, opts: { under?: string } = {}): Sandbox {
  const dir = mkdtempSync(join(opts.under ?? tmpdir(), 'hutch-t-'));
  const root = join(dir, 'root');
  const runroot = join(dir, 'run');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HUTCH_ROOT: root,
    HUTCH_RUNROOT: runroot,
    HUTCH_CONFIG: '',
    XDG_CONFIG_HOME: join(dir, 'config'),
    ...extraEnv,
  };
  const box: Sandbox = {
    root,
    runroot,
    dir,
    env,
    hutch: (args, opts = {}) => runHutch(args, { ...env, ...(opts.env ?? {}) }, opts),
    pausePid: () => {
      try {
        const pid = Number(readFileSync(join(runroot, 'pause.pid'), 'utf8').trim());
        return isLiveProcess(pid, 'hutch-pause') ? pid : undefined;
      } catch {
        return undefined;
      }
    },
    problems: () => {
      const r = runHutch(['system', 'check', '--format', 'json'], env);
      if (!r.stdout.trim().startsWith('{')) throw new Error(`system check failed: ${r.stderr}`);
      const { findings } = JSON.parse(r.stdout) as {
        findings: { severity: string; what: string; detail: string }[];
      };
      return findings.filter((f) => f.severity === 'problem');
    },
    cleanup: () => {
      // reset removes sub-id-owned files from inside the namespace, then ends the pause process.
      const reset = runHutch(['system', 'reset', '-f'], env);
      const pid = box.pausePid();
      if (pid !== undefined) killAndWait(pid);
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch (e) {
        // What is left is owned by sub-ids: reset failed, and why is the useful part.
        throw new Error(
          `${(e as Error).message}; system reset said: ${reset.stderr.trim() || `exit ${reset.status}`}`,
          { cause: e },
        );
      }
    },
  };
  return box;
}
