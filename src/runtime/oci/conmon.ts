/**
 * conmon, the per-container monitor. hutch starts one conmon per container
 * (and per `exec`); it creates the container through the OCI runtime, holds
 * its stdio or terminal, writes its log and, when the container ends, its
 * exit file, then runs hutch's exit command (`hutch container cleanup`) so
 * that mounts are released and restart policies applied with no daemon.
 *
 * The parent learns the outcome of the create through the sync pipe (fd 3 in
 * conmon, named by _OCI_SYNCPIPE): one JSON line `{"data": PID}`, or a
 * negative number and a message when the runtime failed.
 */
import { closeSync, read, readFileSync } from 'node:fs';
import { sys } from '../../sys/native.ts';
import { HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import { which } from '../../util/which.ts';
import type { OciRuntime } from './runtime.ts';

/** One of conmon's stdio: this process's own fd of that number, /dev/null, or the given fd. */
export type StdioFd = 'inherit' | 'ignore' | number;

export type ConmonLog =
  { driver: 'k8s-file'; path: string; maxSize?: number } | { driver: 'none' | 'passthrough' };

export interface ConmonOptions {
  id: string;
  name: string;
  bundle: string;
  runtime: OciRuntime;
  exitDir: string;
  socketDir: string;
  log: ConmonLog;
  terminal: boolean;
  /** Keep a pipe to the container's stdin (docker's -i). */
  stdin: boolean;
  /** For passthrough: what the container should have as its stdio (default: all /dev/null). */
  stdio?: [StdioFd, StdioFd, StdioFd];
  exitCommand: string[] | undefined;
  /** exec: the process.json to run in the running container. */
  exec?: { processSpec: string; attach: boolean; session: string };
  env: NodeJS.ProcessEnv;
}

export interface Conmon {
  /** The container's (or exec process's) pid. */
  pid: number;
  /** conmon's own pid (it forks away from the process hutch started). */
  conmonPid: number;
  /** The rest of the sync pipe's lines (exec sessions report their exit code on it). */
  nextMessage: () => Promise<SyncMessage>;
  /** Closes the sync pipe: conmon goes on alone. */
  release: () => void;
}

export interface SyncMessage {
  data: number;
  message?: string;
}

export function conmonPath(): string {
  const p = which('conmon');
  if (!p) {
    throw new HutchError('NO_CONMON', 'conmon is not installed; hutch needs it to monitor containers', {
      hint: 'Install it: apt install conmon.',
    });
  }
  return p;
}

export function conmonArgs(o: ConmonOptions): string[] {
  const short = o.id.slice(0, 12);
  const args = [
    '--api-version',
    '1',
    '-c',
    o.id,
    '-u',
    o.exec ? `${short}-${o.exec.session}` : short,
    '-n',
    o.name,
    '-r',
    o.runtime.path,
    '-b',
    o.bundle,
    '-p',
    `${o.bundle}/${o.exec ? `exec-${o.exec.session}.pid` : 'pidfile'}`,
    '-P',
    `${o.bundle}/${o.exec ? `exec-${o.exec.session}-conmon.pid` : 'conmon.pid'}`,
    '--socket-dir-path',
    o.socketDir,
    '--log-level',
    'error',
    '--syslog',
  ];
  if (!o.exec) args.push('--exit-dir', o.exitDir);
  for (const a of o.runtime.globalArgs()) args.push('--runtime-arg', a);
  if (o.log.driver === 'k8s-file') {
    args.push('-l', `k8s-file:${o.log.path}`);
    if (o.log.maxSize && o.log.maxSize > 0) args.push('--log-size-max', String(o.log.maxSize));
  } else {
    args.push('-l', o.log.driver);
  }
  if (o.terminal) args.push('-t');
  if (o.stdin) args.push('-i');
  if (o.stdin && !o.exec) args.push('--leave-stdin-open');
  if (o.exec) {
    args.push('-e', '--exec-process-spec', o.exec.processSpec);
    if (o.exec.attach) args.push('--exec-attach');
  }
  if (o.exitCommand) {
    const [cmd, ...rest] = o.exitCommand;
    args.push('--exit-command', cmd!);
    for (const a of rest) args.push('--exit-command-arg', a);
  }
  return args;
}

/**
 * Reads the sync pipe a line at a time. The reads run on Node's thread pool
 * (a pipe has no readiness for fs calls): one read waits at a time, and the
 * pipe is closed only between reads.
 */
function lineReader(fd: number): { nextLine: () => Promise<string | undefined>; close: () => void } {
  let pending = Buffer.alloc(0);
  let ended = false;
  let closed = false;
  const chunk = Buffer.allocUnsafe(4096);
  const readSome = (): Promise<number> =>
    new Promise((resolve, reject) =>
      read(fd, chunk, 0, chunk.length, null, (e, n) => (e ? reject(e) : resolve(n))),
    );
  return {
    async nextLine() {
      for (;;) {
        const nl = pending.indexOf(10);
        if (nl >= 0) {
          const line = pending.subarray(0, nl).toString('utf8');
          pending = pending.subarray(nl + 1);
          return line;
        }
        if (ended || closed) return undefined;
        const n = await readSome().catch(() => 0);
        if (n === 0) ended = true;
        else pending = Buffer.concat([pending, chunk.subarray(0, n)]);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}

function stdioFds(stdio: [StdioFd, StdioFd, StdioFd] | undefined): number[] {
  return (stdio ?? ['ignore', 'ignore', 'ignore']).map((s, i) =>
    s === 'inherit' ? i : s === 'ignore' ? -1 : s,
  );
}

/**
 * Starts conmon and waits until the runtime has created the container (or
 * failed to). conmon is started through the native addon, not
 * child_process: see native/sys.c.
 */
export async function startConmon(o: ConmonOptions): Promise<Conmon> {
  const args = conmonArgs(o);
  log.debug(`conmon ${args.join(' ')}`);
  const path = conmonPath();
  const env = Object.entries({ ...o.env, _OCI_SYNCPIPE: '3' }).flatMap(([k, v]) =>
    v === undefined ? [] : [`${k}=${v}`],
  );
  const [syncRead, syncWrite] = sys().pipe();
  let pid: number;
  try {
    pid = sys().spawn(path, [path, ...args], env, [...stdioFds(o.stdio), syncWrite]);
  } catch (e) {
    closeSync(syncRead);
    throw new HutchError('CONMON_FAILED', `cannot start conmon (${path}): ${(e as Error).message}`);
  } finally {
    closeSync(syncWrite);
  }
  const sync = lineReader(syncRead);
  const nextMessage = async (): Promise<SyncMessage> => {
    const line = await sync.nextLine();
    if (line === undefined) {
      throw new HutchError('CONMON_FAILED', 'conmon ended without reporting', {
        hint: "Run with --log-level debug; `journalctl -t conmon` or syslog may hold conmon's own message.",
      });
    }
    try {
      return JSON.parse(line) as SyncMessage;
    } catch {
      throw new HutchError('CONMON_FAILED', `conmon sent an unreadable message: ${line.slice(0, 200)}`);
    }
  };
  let first: SyncMessage;
  try {
    first = await nextMessage();
  } catch (e) {
    sync.close();
    throw e;
  } finally {
    // conmon forks: the child creates the container and reports on the sync
    // pipe, while the parent writes conmon's pid file (-P) and exits, long
    // before the report as a rule. Its pid file is read once it is gone.
    await reap(pid);
  }
  if (first.data < 0 || first.message) {
    sync.close();
    const why = (first.message ?? '').trim().replace(/^.*?msg="?/s, '');
    throw runtimeCreateError(o.runtime.name, why);
  }
  const conmonPid = Number(
    readFileSync(`${o.bundle}/${o.exec ? `exec-${o.exec.session}-conmon.pid` : 'conmon.pid'}`, 'utf8').trim(),
  );
  return { pid: first.data, conmonPid, nextMessage, release: sync.close };
}

/** Waits up to 5 s for the conmon process this one started to end, and reaps it. */
async function reap(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (sys().waitpid(pid) === null) {
    if (Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * The runtime's words turned into docker's exit codes: a command that cannot
 * be found is 127, one that cannot be run is 126, anything else the engine's 125.
 */
export function runtimeCreateError(runtime: string, why: string): HutchError {
  const text = why.trim();
  if (
    /executable file .* not found|no such file or directory/i.test(text) &&
    /exec|executable|\$PATH/i.test(text)
  ) {
    return new HutchError('CMD_NOT_FOUND', `${runtime}: ${text}`, {
      hint: 'Check the command and the image: the program must exist inside the container.',
      exitCode: 127,
    });
  }
  if (/permission denied|exec format error|is a directory|not executable/i.test(text) && /exec/i.test(text)) {
    return new HutchError('CMD_CANNOT_INVOKE', `${runtime}: ${text}`, {
      hint: 'The program exists but cannot be executed: check its mode and architecture.',
      exitCode: 126,
    });
  }
  return new HutchError('RUNTIME_FAILED', `${runtime} could not create the container: ${text}`, {
    hint: 'Run `hutch doctor` to check the host; --log-level debug shows the spec and calls.',
  });
}
