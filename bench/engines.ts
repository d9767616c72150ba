/**
 * How each engine is run in isolation, and cleaned up after.
 *
 * Stores. Every scenario gets its own directory under the run's bench
 * directory (~/.cache/hutch-bench/run-*), for the stores, and its own short
 * directory under $XDG_RUNTIME_DIR/hb-<pid>/, for the runtime state, as a
 * user's engines have it (podman also refuses a runroot over 50 characters):
 *
 *   <dir>/hutch, <run>/h        -> HUTCH_ROOT, HUTCH_RUNROOT
 *   <dir>/podman                -> podman --root
 *   <run>/px                    -> podman's XDG_RUNTIME_DIR
 *   <run>/px/r                  -> podman --runroot
 *   <run>/px/libpod/tmp         -> podman --tmpdir (its default there)
 *
 * podman is given flags rather than a CONTAINERS_STORAGE_CONF so that the
 * user's containers.conf and storage.conf (driver, cgroup manager) still apply
 * as they would for that user, and only the locations move. The runtime
 * directory and --tmpdir matter: rootless podman keeps pause.pid in its
 * tmpdir, so our podman's pause process is ours alone and can be stopped by
 * the pid in that file; and podman joins its user namespace without
 * re-executing itself only when pause.pid is at $XDG_RUNTIME_DIR/libpod/tmp,
 * where a user's podman has it. With a tmpdir elsewhere every podman command
 * ran twice (about 30 ms more each), which made podman look slower than it is.
 * The runroot lies inside that runtime directory, as a user's does: podman's
 * rootless network namespace sees the runtime directory only, and keeps its
 * IPAM database in the runroot.
 *
 * Pause processes. Both engines keep a rootless user namespace alive with a
 * pause process in its own session (hutch: `hutch-pause`, pid in
 * <runroot>/pause.pid; podman: `catatonit -P`, pid in <tmpdir>/pause.pid).
 * podman's network helpers normally end with the last container on a
 * network, but a scenario that fails halfway leaves them running: its
 * slirp4netns (pid in <tmpdir>/rootless-netns/rootless-netns-slirp4netns.pid)
 * and aardvark-dns (pid in <runroot>/networks/aardvark-dns/aardvark.pid).
 * stopPauseProcesses() ends exactly the pids in those files, after checking
 * that they are live processes of ours; never anything found by name.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Cmd, CmdSpec, ResolvedCmd, ScenarioContext } from './types.ts';

export const PODMAN = '/usr/bin/podman';

export interface EngineSetup {
  repo: string;
  /** The hutch launcher to time (bin/hutch unless --hutch is given). */
  hutchBin: string;
  /** The Node hutch runs on, for the floor. */
  hutchNode: string;
}

export function hutchNodeOf(repo: string): string {
  const pinned = join(repo, 'node_modules/node/bin/node');
  return existsSync(pinned) ? pinned : process.execPath;
}

function toSpec(cmd: Cmd, ctx: ScenarioContext): CmdSpec {
  const c = typeof cmd === 'function' ? cmd(ctx) : cmd;
  return Array.isArray(c) ? { argv: c } : c;
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return env;
}

/** Where the runtime directories of a run go: short, and in the user's runtime directory when there is one. */
export function runBaseDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  const base = xdg?.startsWith('/') && existsSync(xdg) ? xdg : '/tmp';
  return join(base, `hb-${process.pid}`);
}

export function makeContext(setup: EngineSetup, dir: string, runDir: string): ScenarioContext {
  const hutchRoot = join(dir, 'hutch');
  const hutchRunroot = join(runDir, 'h');
  const podmanRoot = join(dir, 'podman');
  const podmanRuntimeDir = join(runDir, 'px');
  const podmanRunroot = join(podmanRuntimeDir, 'r');
  const podmanTmpdir = join(podmanRuntimeDir, 'libpod', 'tmp');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(podmanRuntimeDir, { recursive: true, mode: 0o700 });

  const ctx: ScenarioContext = {
    repo: setup.repo,
    dir,
    hutchRoot,
    hutchRunroot,
    podmanRoot,
    podmanRunroot,
    podmanTmpdir,
    resolve(cmd: Cmd): ResolvedCmd {
      const spec = toSpec(cmd, ctx);
      const [program, ...rest] = spec.argv;
      if (program === undefined) throw new Error('a bench command has an empty argv');
      const env = { ...baseEnv(), ...spec.env };
      let file = program;
      let args = rest;
      if (program === 'hutch') {
        file = setup.hutchBin;
        env.HUTCH_ROOT = spec.env?.HUTCH_ROOT ?? hutchRoot;
        env.HUTCH_RUNROOT = spec.env?.HUTCH_RUNROOT ?? hutchRunroot;
      } else if (program === 'podman') {
        file = PODMAN;
        env.XDG_RUNTIME_DIR = podmanRuntimeDir;
        args = ['--root', podmanRoot, '--runroot', podmanRunroot, '--tmpdir', podmanTmpdir, ...rest];
      } else if (program === 'node') {
        file = setup.hutchNode;
      }
      return {
        file,
        args,
        env,
        cwd: spec.cwd ?? dir,
        capture: spec.capture ?? false,
        input: spec.input,
      };
    },
    run(cmd: Cmd) {
      const r = ctx.resolve(cmd);
      const res = spawnSync(r.file, r.args, {
        env: r.env,
        cwd: r.cwd,
        input: r.input,
        stdio: ['pipe', 'pipe', 'pipe'],
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
      });
      if (res.error) throw new Error(`${r.file} ${r.args.join(' ')}: ${res.error.message}`);
      if (res.status !== 0) {
        throw new Error(
          `${r.file} ${r.args.join(' ')} exited ${res.status ?? res.signal}:\n${res.stderr.trim()}`,
        );
      }
      return { stdout: res.stdout, stderr: res.stderr };
    },
  };
  return ctx;
}

/** The pid recorded in PIDFILE if it is a live process owned by us, else undefined. */
function ownLivePid(pidfile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(pidfile, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    const st = statSync(`/proc/${pid}`);
    if (st.uid !== process.getuid?.()) return undefined;
    // A zombie or exiting process has no cmdline left; nothing to stop.
    return readFileSync(`/proc/${pid}/cmdline`).length > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether PID has ended (a zombie has: its parent, not us, is to reap it). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function waitGone(pid: number, ms: number): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (gone(pid)) return true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  return gone(pid);
}

/** Stops the engines' pause processes of this scenario, and podman's network helpers if a failure left them; returns what was stopped. */
export function stopPauseProcesses(ctx: ScenarioContext): string[] {
  const stopped: string[] = [];
  // The helpers first: they live in the namespaces the pause processes hold.
  const files: [string, string][] = [
    ['podman slirp4netns', join(ctx.podmanTmpdir, 'rootless-netns', 'rootless-netns-slirp4netns.pid')],
    ['podman aardvark-dns', join(ctx.podmanRunroot, 'networks', 'aardvark-dns', 'aardvark.pid')],
    ['hutch pause process', join(ctx.hutchRunroot, 'pause.pid')],
    ['podman pause process', join(ctx.podmanTmpdir, 'pause.pid')],
  ];
  for (const [what, pidfile] of files) {
    const pid = ownLivePid(pidfile);
    if (pid === undefined) continue;
    try {
      process.kill(pid, 'SIGTERM');
      if (!waitGone(pid, 2000)) process.kill(pid, 'SIGKILL');
      stopped.push(`${what} ${pid}`);
    } catch {
      // Gone already.
    }
  }
  return stopped;
}

/**
 * Removes the run's directories, whose stores hold files of the user's
 * subordinate ids: as root directly; as a user from inside podman's user
 * namespace (a throwaway store in RUNDIR), whose pause process is stopped
 * afterwards.
 */
export function removeBenchDirs(dirs: string[], runDir: string, rm: (path: string) => void): void {
  const present = dirs.filter((d) => existsSync(d));
  if (process.getuid?.() !== 0 && present.length > 0) {
    const scratch = join(runDir, 'rm');
    const res = spawnSync(
      PODMAN,
      [
        '--root',
        join(scratch, 'root'),
        '--runroot',
        join(scratch, 'run'),
        '--tmpdir',
        join(scratch, 'tmp'),
        'unshare',
        'rm',
        '-rf',
        '--',
        ...present.flatMap((d) =>
          readdirSync(d)
            .map((name) => join(d, name))
            .filter((p) => p !== scratch),
        ),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
    );
    const pid = ownLivePid(join(scratch, 'tmp', 'pause.pid'));
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGTERM');
        waitGone(pid, 2000);
      } catch {
        // Gone already.
      }
    }
    if (res.status !== 0) process.stderr.write(`bench: podman unshare rm failed: ${res.stderr}\n`);
  }
  for (const d of present) rm(d);
}
