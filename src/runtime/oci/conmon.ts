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
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import { which } from '../../util/which.ts';
import type { OciRuntime } from './runtime.ts';

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
  /** For passthrough: the fds the container should have as its stdio. */
  stdio?: StdioOptions;
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
  /** The sync pipe, still open: exec sessions report their exit code on it. */
  sync: ChildProcess;
  /** The rest of the sync pipe's lines. */
  nextMessage: () => Promise<SyncMessage>;
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

/** Starts conmon and waits until the runtime has created the container (or failed to). */
export async function startConmon(o: ConmonOptions): Promise<Conmon> {
  const { spawn } = process.getBuiltinModule('node:child_process');
  const args = conmonArgs(o);
  log.debug(`conmon ${args.join(' ')}`);
  const base = (o.stdio as unknown[] | undefined) ?? ['ignore', 'ignore', 'ignore'];
  const child = spawn(conmonPath(), args, {
    stdio: [base[0], base[1], base[2], 'pipe'] as StdioOptions,
    env: { ...o.env, _OCI_SYNCPIPE: '3' },
    detached: false,
  });
  const pipe = child.stdio[3] as Readable;
  const lines: string[] = [];
  const waiters: ((line: string | undefined) => void)[] = [];
  let buffered = '';
  let ended = false;
  pipe.setEncoding('utf8');
  pipe.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  pipe.on('error', () => {});
  pipe.on('close', () => {
    ended = true;
    for (const w of waiters.splice(0)) w(undefined);
  });
  const stderr: string[] = [];
  child.on('error', (e) => stderr.push(e.message));
  // conmon forks: the child creates the container and reports on the sync pipe,
  // while the parent writes conmon's pid file (-P) and exits. The report can
  // come first, so the pid file is read only once the parent is gone.
  const parentDone = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const nextLine = (): Promise<string | undefined> =>
    lines.length
      ? Promise.resolve(lines.shift())
      : ended
        ? Promise.resolve(undefined)
        : new Promise((r) => waiters.push(r));
  const nextMessage = async (): Promise<SyncMessage> => {
    const line = await nextLine();
    if (line === undefined) {
      throw new HutchError(
        'CONMON_FAILED',
        `conmon ended without reporting${stderr.length ? `: ${stderr.join('; ')}` : ''}`,
        {
          hint: "Run with --log-level debug; `journalctl -t conmon` or syslog may hold conmon's own message.",
        },
      );
    }
    try {
      return JSON.parse(line) as SyncMessage;
    } catch {
      throw new HutchError('CONMON_FAILED', `conmon sent an unreadable message: ${line.slice(0, 200)}`);
    }
  };
  const first = await nextMessage();
  if (first.data < 0 || first.message) {
    const why = (first.message ?? '').trim().replace(/^.*?msg="?/s, '');
    throw runtimeCreateError(o.runtime.name, why);
  }
  if (child.exitCode === null && child.signalCode === null) {
    await Promise.race([parentDone, new Promise((r) => setTimeout(r, 5000).unref())]);
  }
  const conmonPid = Number(
    readFileSync(`${o.bundle}/${o.exec ? `exec-${o.exec.session}-conmon.pid` : 'conmon.pid'}`, 'utf8').trim(),
  );
  return { pid: first.data, conmonPid, sync: child, nextMessage };
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
