/**
 * `hutch exec`: a process in a running container, through the OCI runtime's
 * own exec. In the foreground the runtime process is the session (stdio and
 * terminal pass straight through, its exit code is the command's); with -d
 * the runtime detaches and hutch returns at once.
 */
import { randomHex } from '../../util/random.ts';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnvFile, parseEnvFlag } from '../../runtime/env.ts';
import { allCapabilities, resolveCapabilities } from '../../runtime/security.ts';
import type { OciSpec } from '../../runtime/spec.ts';
import { resolveUser } from '../../runtime/user.ts';
import { HutchError } from '../../util/errors.ts';
import { writeJsonAtomic } from '../../util/fs-atomic.ts';
import type { Containers } from './open.ts';
import { isRunning } from './stop.ts';

export interface ExecRequest {
  container: string;
  command: string[];
  interactive: boolean;
  tty: boolean;
  detach: boolean;
  env: string[];
  envFiles: string[];
  user: string | undefined;
  workdir: string | undefined;
  privileged: boolean;
}

function mergeVars(base: string[], extra: string[]): string[] {
  const out = new Map<string, string>();
  for (const kv of [...base, ...extra]) {
    const eq = kv.indexOf('=');
    if (eq > 0) out.set(kv.slice(0, eq), kv);
  }
  return [...out.values()];
}

export async function execInContainer(c: Containers, req: ExecRequest): Promise<number> {
  const rec = c.store.get(req.container);
  if (!isRunning(c, rec) || !rec.state.rootfs) {
    throw new HutchError('CONTAINER_NOT_RUNNING', `container ${rec.name} is not running`, {
      hint: `Start it first: hutch start ${rec.name}`,
    });
  }
  if (rec.state.status === 'paused') {
    throw new HutchError('CONTAINER_PAUSED', `container ${rec.name} is paused`, {
      hint: `Unpause it: hutch unpause ${rec.name}`,
    });
  }
  const bundle = c.store.bundle(rec.id);
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as OciSpec;
  const user = req.user === undefined ? spec.process.user : resolveUser(rec.state.rootfs, req.user);
  const fileVars = req.envFiles.flatMap((f) => parseEnvFile(readFileSync(f, 'utf8'), f, process.env));
  const flagVars = req.env
    .map((e) => parseEnvFlag(e, process.env))
    .filter((e): e is string => e !== undefined);
  const caps = req.privileged
    ? {
        bounding: allCapabilities(),
        effective: allCapabilities(),
        permitted: allCapabilities(),
        inheritable: [],
        ambient: [],
      }
    : req.user === undefined
      ? spec.process.capabilities
      : resolveCapabilities({
          capAdd: rec.hostConfig.capAdd,
          capDrop: rec.hostConfig.capDrop,
          privileged: rec.hostConfig.privileged,
          uid: user.uid,
        });
  const env = mergeVars(spec.process.env, [...fileVars, ...flagVars, ...(req.tty ? [] : [])]);
  const processSpec = {
    ...spec.process,
    terminal: req.tty,
    args: req.command,
    env: req.tty && !env.some((e) => e.startsWith('TERM=')) ? [...env, 'TERM=xterm'] : env,
    cwd: req.workdir ?? spec.process.cwd,
    user: {
      uid: user.uid,
      gid: user.gid,
      ...('additionalGids' in user && user.additionalGids?.length
        ? { additionalGids: user.additionalGids }
        : {}),
    },
    capabilities: caps,
  };
  const file = join(bundle, `exec-${randomHex(6)}.json`);
  writeJsonAtomic(file, processSpec, 0o600);
  const runtime = c.runtime(rec.runtime);
  const { spawn } = process.getBuiltinModule('node:child_process');
  const args = [
    ...runtime.globalArgs(),
    'exec',
    '--process',
    file,
    ...(req.detach ? ['--detach'] : []),
    rec.id,
  ];
  const child = spawn(runtime.path, args, {
    stdio: [req.interactive || req.tty ? 'inherit' : 'ignore', 'inherit', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    const text = d.toString();
    stderr += text;
    // The runtime's own complaints are turned into docker's codes below; the process's stderr passes.
    if (
      !/executable file .* not found|permission denied|exec format error|no such file or directory/i.test(
        text,
      )
    )
      process.stderr.write(d);
  });
  const code = await new Promise<number>((resolve) => {
    child.on('exit', (status, signal) =>
      resolve(
        status ?? 128 + (signal ? (process.getBuiltinModule('node:os').constants.signals[signal] ?? 0) : 0),
      ),
    );
    child.on('error', () => resolve(126));
  });
  rmSync(file, { force: true });
  if (/executable file .* not found|no such file or directory/i.test(stderr) && code !== 0) {
    throw new HutchError('CMD_NOT_FOUND', `${runtime.name} exec: ${stderr.trim().split('\n').pop()}`, {
      exitCode: 127,
    });
  }
  if (/permission denied|exec format error/i.test(stderr) && code !== 0) {
    throw new HutchError('CMD_CANNOT_INVOKE', `${runtime.name} exec: ${stderr.trim().split('\n').pop()}`, {
      exitCode: 126,
    });
  }
  return code;
}
