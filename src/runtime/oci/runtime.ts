/**
 * The OCI runtime (crun by default, runc as the alternative), driven by its
 * command line. Its state lives under RUNROOT/oci/NAME, apart from the
 * system-wide default, so rootless users and several stores never meet.
 *
 * Which runtime: the one asked for (--runtime, HUTCH_RUNTIME, hutch.toml),
 * else crun, else runc. crun refuses a host with hybrid cgroups (a v2
 * hierarchy that still holds controllers), so there hutch takes runc and
 * warns once per command, as `hutch doctor` explains.
 */
import type { SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';
import { cgroupLayout, crunRefusesHybrid, hostCgroupLayout } from '../../host/cgroups.ts';
import type { HostView } from '../../host/view.ts';
import { HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import { which } from '../../util/which.ts';

export interface RuntimeChoice {
  name: string;
  path: string;
  /** Why this one, when it was not simply asked for or the default. */
  fallback: string | undefined;
}

export interface PickOptions {
  /** The host's facts (recorded hosts in tests). */
  host?: HostView;
  /** PATH lookup. */
  which?: (name: string) => string | undefined;
}

export function pickRuntime(requested: string | undefined, opts: PickOptions = {}): RuntimeChoice {
  const lookup = opts.which ?? which;
  if (requested) {
    const path = requested.includes('/') ? requested : lookup(requested);
    if (!path) {
      throw new HutchError('NO_RUNTIME', `the OCI runtime "${requested}" is not installed`, {
        hint: `Install it (apt install ${requested}), or drop --runtime to use the default.`,
      });
    }
    return { name: requested.split('/').pop()!, path, fallback: undefined };
  }
  const crun = lookup('crun');
  const hybrid =
    crun !== undefined && crunRefusesHybrid(opts.host ? cgroupLayout(opts.host) : hostCgroupLayout());
  if (crun && !hybrid) return { name: 'crun', path: crun, fallback: undefined };
  const runc = lookup('runc');
  if (runc) {
    return {
      name: 'runc',
      path: runc,
      fallback: crun
        ? "crun refuses this host's hybrid cgroups; using runc (run `hutch doctor` for the fix that lets crun work)"
        : undefined,
    };
  }
  if (crun) {
    throw new HutchError('NO_RUNTIME', "crun refuses this host's hybrid cgroups, and runc is not installed", {
      hint: 'Install runc (apt install runc), or apply the cgroup fix `hutch doctor` shows so crun works.',
    });
  }
  throw new HutchError('NO_RUNTIME', 'no OCI runtime found: neither crun nor runc is installed', {
    hint: 'Install one: apt install crun (or runc).',
  });
}

let warned = false;

export class OciRuntime {
  readonly root: string;
  readonly choice: RuntimeChoice;

  constructor(choice: RuntimeChoice, runtimeRoot: string) {
    this.choice = choice;
    this.root = join(runtimeRoot, choice.name);
    if (choice.fallback && !warned) {
      warned = true;
      log.warn(choice.fallback);
    }
  }

  get name(): string {
    return this.choice.name;
  }

  get path(): string {
    return this.choice.path;
  }

  /** Arguments every invocation needs, before the subcommand (also handed to conmon). */
  globalArgs(): string[] {
    return [`--root=${this.root}`];
  }

  private run(args: string[], input?: string): SpawnSyncReturns<string> {
    const { spawnSync } = process.getBuiltinModule('node:child_process');
    return spawnSync(this.path, [...this.globalArgs(), ...args], {
      encoding: 'utf8',
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  private fail(what: string, r: SpawnSyncReturns<string>): HutchError {
    const msg = (r.stderr || r.stdout || r.error?.message || '').trim().split('\n').pop() ?? '';
    return new HutchError('RUNTIME_FAILED', `${this.name} ${what} failed: ${msg}`, {
      hint: 'Run `hutch doctor` to check the host; `--log-level debug` shows the runtime calls.',
    });
  }

  start(id: string): void {
    if (this.name === 'crun' && this.startThroughFifo(id)) return;
    const r = this.run(['start', id]);
    // runc removes exec.fifo only after the container has been let go; a container that
    // ended at once may already have been deleted by its exit hook: it did start.
    if (r.status !== 0 && /exec\.fifo: no such file or directory/.test(`${r.stderr}${r.stdout}`)) return;
    if (r.status !== 0) throw this.fail('start', r);
  }

  /**
   * What `crun start` does for a container without hooks or a notify socket:
   * the created container waits on its exec.fifo; opening it for writing,
   * removing it and writing one byte lets it exec. Done here it saves a
   * process start (about 6 ms of a container start); anything unexpected
   * falls back to the real `crun start`.
   */
  private startThroughFifo(id: string): boolean {
    const { openSync, writeSync, closeSync, unlinkSync, constants } = process.getBuiltinModule('node:fs');
    const fifo = join(this.root, id, 'exec.fifo');
    let fd: number;
    try {
      fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      return false; // no fifo, or nobody waiting on it (ENXIO): let crun decide
    }
    try {
      unlinkSync(fifo);
      writeSync(fd, Buffer.alloc(1));
      return true;
    } catch {
      return false;
    } finally {
      closeSync(fd);
    }
  }

  /** Sends a signal; false when the container is already gone or stopped. */
  kill(id: string, signal: string, all = false): boolean {
    const r = this.run(['kill', ...(all ? ['--all'] : []), id, signal]);
    if (r.status === 0) return true;
    const text = `${r.stderr}${r.stdout}`;
    if (/does not exist|not running|no such process|container .* is not running|cannot find/i.test(text))
      return false;
    throw this.fail('kill', r);
  }

  /** Forgets the container (its cgroup and state); ignores one it never had. */
  delete(id: string): void {
    const r = this.run(['delete', '--force', id]);
    if (r.status === 0) return;
    const text = `${r.stderr}${r.stdout}`;
    if (/does not exist|not found|no such file/i.test(text)) return;
    throw this.fail('delete', r);
  }

  pause(id: string): void {
    const r = this.run(['pause', id]);
    if (r.status !== 0) throw this.fail('pause', r);
  }

  resume(id: string): void {
    const r = this.run(['resume', id]);
    if (r.status !== 0) throw this.fail('resume', r);
  }

  /** The runtime's own view: created, running, paused, stopped; undefined if it does not know the container. */
  state(id: string): { status: string; pid: number } | undefined {
    const r = this.run(['state', id]);
    if (r.status !== 0) return undefined;
    try {
      const s = JSON.parse(r.stdout) as { status: string; pid: number };
      return { status: s.status, pid: s.pid };
    } catch {
      return undefined;
    }
  }

  update(id: string, resourcesJson: string): void {
    // Through a file, not `--resources -`: crun opens /dev/stdin, which fails (ENXIO)
    // on the socket Node gives a child as its stdin.
    const { mkdtempSync, rmSync, writeFileSync } = process.getBuiltinModule('node:fs');
    const { tmpdir } = process.getBuiltinModule('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'hutch-update-'));
    try {
      writeFileSync(join(dir, 'resources.json'), resourcesJson, { mode: 0o600 });
      const r = this.run(['update', '--resources', join(dir, 'resources.json'), id]);
      if (r.status !== 0) throw this.fail('update', r);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
