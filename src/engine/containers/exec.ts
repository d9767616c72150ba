/**
 * `hutch exec`: a process in a running container, through the OCI runtime's
 * own exec. In the foreground the runtime process is the session (stdio and
 * terminal pass straight through, its exit code is the command's); with -d
 * the runtime detaches and hutch returns at once.
 */
import { randomHex } from '../../util/random.ts';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mergeEnv, parseEnvFile, parseEnvFlag } from '../../runtime/env.ts';
import { allCapabilities, resolveCapabilities } from '../../runtime/security.ts';
import type { OciSpec } from '../../runtime/spec.ts';
import { resolveUser } from '../../runtime/user.ts';
import { HutchError } from '../../util/errors.ts';
import { writeJsonAtomic } from '../../util/fs-atomic.ts';
import type { Containers } from './open.ts';
import { checkExecutable } from '../../runtime/containers/prepare.ts';
import { startConmon } from '../../runtime/oci/conmon.ts';
import { conmonEnv } from './start.ts';
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
  // The container's environment, then --env-file and -e, and TERM with a terminal: the rules of run.
  const env = mergeEnv({ image: spec.process.env, tty: req.tty, files: fileVars, flags: flagVars });
  const processSpec = {
    ...spec.process,
    terminal: req.tty,
    args: req.command,
    env,
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
  // A missing or non-executable command gets docker's codes and a clear message, whatever the runtime.
  checkExecutable(
    rec.state.rootfs,
    req.command[0]!,
    processSpec.env,
    processSpec.cwd,
    rec.hostConfig.mounts.map((m) => m.destination),
  );
  const session = randomHex(6);
  const file = join(bundle, `exec-${session}.json`);
  writeJsonAtomic(file, processSpec, 0o600, { durable: false });
  const runtime = c.runtime(rec.runtime);
  if (req.detach) {
    // conmon stays with a detached process as its reaper: started by the runtime alone,
    // it would be left a zombie under the container's init when it ends.
    try {
      const mon = await startConmon({
        id: rec.id,
        name: rec.name,
        bundle,
        runtime,
        exitDir: c.store.exitsDir,
        socketDir: c.store.socketsDir,
        log: { driver: 'none' },
        terminal: false,
        stdin: false,
        exitCommand: undefined,
        exec: { processSpec: file, attach: false, session },
        env: conmonEnv(),
      });
      mon.release();
    } finally {
      rmSync(file, { force: true });
    }
    return 0;
  }
  const { spawn } = process.getBuiltinModule('node:child_process');
  const child = spawn(runtime.path, [...runtime.globalArgs(), 'exec', '--process', file, rec.id], {
    stdio: [req.interactive || req.tty ? 'inherit' : 'ignore', 'inherit', 'inherit'],
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
  return code;
}
