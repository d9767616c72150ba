/**
 * Starting a container: mount its root, write its spec, hand it to conmon,
 * and let the runtime start it. The record says "running" only once the
 * process runs; any failure on the way undoes the mount and the runtime's
 * state, so a failed start leaves the container as it was.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processStart, observedState } from '../../runtime/containers/liveness.ts';
import { prepareSpec } from '../../runtime/containers/prepare.ts';
import { exposeRoot, hideRoot } from '../../runtime/containers/mapped-root.ts';
import { rootLayerOf } from '../../runtime/containers/types.ts';
import { ownerMapper } from '../../util/idmap.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { startConmon } from '../../runtime/oci/conmon.ts';
import type { OciRuntime } from '../../runtime/oci/runtime.ts';
import { rememberFilter } from '../../runtime/oci/seccomp-cache.ts';
import type { Conmon, ConmonLog, StdioFd } from '../../runtime/oci/conmon.ts';
import { parseBytes } from '../../runtime/resources.ts';
import { lockFile } from '../../sys/lock.ts';
import { helperPath, packageRoot } from '../../sys/native-paths.ts';
import { HutchError } from '../../util/errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../../util/fs-atomic.ts';
import { log } from '../../util/log.ts';
import { attachBridgeNetwork, attachNetwork, detachNetwork } from '../../network/attach.ts';
import { NetworkStore } from '../../network/store.ts';
import type { NetworkState } from '../../network/attach.ts';
import { isUserMode, parseNetworkMode } from '../../network/mode.ts';
import { publishAllBindings } from '../../network/ports.ts';
import type { Containers } from './open.ts';
import { ensureSupervisor } from './supervisor.ts';

export type StartMode =
  /** conmon keeps the streams; logs go to the container's log file. */
  | { kind: 'detached' }
  /** The container's stdio are the given fds (foreground `run --rm` without a terminal). */
  | { kind: 'passthrough'; stdio: [StdioFd, StdioFd, StdioFd] };

export interface StartOptions {
  /** This process stays and cleans up when the container ends (foreground run, start -a). */
  owner?: boolean;
}

export interface Started {
  rec: ContainerRecord;
  conmon: Conmon;
}

/** Where a foreground command records that it will clean up itself (read by the exit hook). */
export function ownerFile(c: Containers, id: string): string {
  return join(c.store.bundle(id), 'owner');
}

/**
 * The command conmon runs when the container ends: `hutch container cleanup
 * ID` for this store, behind the native exit hook that skips it while a
 * foreground hutch that owns the container is alive (see native/helper.c).
 */
/** This hutch on this store, for what runs later on a container's behalf (exit hook, supervisor). */
export function selfCommand(c: Containers): string[] {
  const p = c.ctx.paths;
  return [
    join(packageRoot(), 'bin/hutch'),
    '--root',
    p.root,
    '--runroot',
    p.runroot,
    ...(c.ctx.storageDriver ? ['--storage-driver', c.ctx.storageDriver] : []),
  ];
}

export function exitCommand(c: Containers, id: string, runtime: OciRuntime): string[] {
  return [
    helperPath(),
    'exit-hook',
    ownerFile(c, id),
    runtime.path,
    runtime.root,
    id,
    ...selfCommand(c),
    '--log-level',
    'error',
    'container',
    'cleanup',
    id,
  ];
}

export function logConfig(c: Containers, rec: ContainerRecord): ConmonLog {
  const d = rec.hostConfig.logDriver;
  if (d === 'none') return { driver: 'none' };
  const max = rec.hostConfig.logOpts['max-size'];
  return {
    driver: 'k8s-file',
    path: rec.hostConfig.logOpts.path ?? c.store.logPath(rec.id),
    ...(max ? { maxSize: parseBytes(max, '--log-opt max-size') } : {}),
  };
}

function pidOf(c: Containers): (ref: string) => number {
  return (ref) => {
    const other = c.store.get(ref);
    const s = observedState(other, c.store.exitFile(other.id));
    if (s.status !== 'running' && s.status !== 'paused') {
      throw new HutchError(
        'CONTAINER_NOT_RUNNING',
        `container ${other.name} is not running, so its namespaces cannot be joined`,
        {
          hint: `Start it first: hutch start ${other.name}`,
        },
      );
    }
    return s.pid;
  };
}

/** pasta or slirp4netns for a container on a user-mode network, with its ports published; else undefined. */
async function attachUserNetwork(c: Containers, rec: ContainerRecord): Promise<NetworkState | undefined> {
  const mode = parseNetworkMode(rec.hostConfig.networkMode, 'none');
  if (!isUserMode(mode) && mode.kind !== 'networks') return undefined;
  const explicit = rec.hostConfig.portBindings ?? [];
  const ports = rec.hostConfig.publishAll
    ? [...explicit, ...publishAllBindings(rec.config.exposedPorts, explicit)]
    : explicit;
  let hostResolvConf = '';
  try {
    hostResolvConf = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // None on the host: the container gets the fallback resolvers.
  }
  const wantsHost = rec.options.addHosts.some((h) => /[:=]host-gateway$/.test(h));
  const hostLoopback = c.ctx.config.network?.host_loopback === true;
  if (mode.kind === 'networks') {
    // All user networks share one pasta: the host's loopback is open to them all, or to none.
    if (wantsHost && !hostLoopback && c.ctx.ident.rootless) {
      throw new HutchError(
        'NO_HOST_GATEWAY',
        "--add-host NAME:host-gateway on a user network needs the host's loopback opened to user networks",
        {
          hint: 'Set host_loopback = true under [network] in hutch.toml (it applies to every container on a user network), or use the default network (pasta).',
        },
      );
    }
    const store = new NetworkStore(c.ctx.paths.root);
    return attachBridgeNetwork({
      id: rec.id,
      root: c.ctx.paths.root,
      runroot: c.ctx.paths.runroot,
      attachments: (rec.hostConfig.networks ?? []).map((a) => ({
        net: store.get(a.name),
        aliases: a.aliases,
        ip: a.ip,
      })),
      names: [...new Set([rec.name, rec.id.slice(0, 12), rec.config.hostname])],
      ports,
      allow: rec.hostConfig.publishAllow ?? [],
      rootless: c.ctx.ident.rootless,
      // Rootful, the host is simply the other end of the user networks' link.
      hostLoopback: hostLoopback || (wantsHost && !c.ctx.ident.rootless),
      uplink: c.ctx.config.network?.user_networks_uplink,
    });
  }
  return attachNetwork({
    id: rec.id,
    runroot: c.ctx.paths.runroot,
    mode,
    ports,
    hostLoopback: hostLoopback || wantsHost,
    rootless: c.ctx.ident.rootless,
    hostResolvConf,
    allow: rec.hostConfig.publishAllow ?? [],
    // A privileged container runs with no seccomp filter, which the handoff needs.
    handoff: !rec.options.privileged && c.ctx.config.network?.port_handoff !== false,
  });
}

/**
 * Starts a created or exited container. `beforeStart` runs once the
 * container exists in the runtime but before its process runs: the place to
 * attach, so that no output is missed.
 */
export async function startContainer(
  c: Containers,
  id: string,
  mode: StartMode,
  beforeStart?: (rec: ContainerRecord, conmon: Conmon) => Promise<void>,
  opts: StartOptions = {},
): Promise<Started> {
  const lock = lockFile(c.store.lockPath(id));
  if (!lock) throw new HutchError('LOCK', `could not lock container ${id}`);
  try {
    const rec = c.store.read(id);
    if (!rec) throw new HutchError('NO_SUCH_CONTAINER', `no such container: ${id}`);
    const now = observedState(rec, c.store.exitFile(id));
    if (now.status === 'running' || now.status === 'paused') {
      throw new HutchError('ALREADY_RUNNING', `container ${rec.name} is already running`, { exitCode: 0 });
    }
    const runtime = c.runtime(rec.runtime);
    const driver = c.images.driver;
    let mounted = false;
    let created = false;
    let networked = false;
    try {
      // A container that exited may still be known to the runtime and mounted.
      if (existsSync(join(runtime.root, id))) runtime.delete(id);
      // A --rm container's writes die with it: no need to flush them at unmount.
      const rootfs = driver.mountContainer(id, rootLayerOf(rec), {
        volatile: rec.hostConfig.autoRemove,
        rootOwner: rec.idMappings ? ownerMapper(rec.idMappings, 'to-namespace')(0, 0) : undefined,
      });
      mounted = true;
      // Recorded before anything uses it: a command killed from here on leaves what cleanup must end.
      rec.state = { ...rec.state, network: undefined };
      const network = await attachUserNetwork(c, rec);
      if (network) {
        networked = true;
        rec.state = { ...rec.state, network };
        c.store.write(rec);
      }
      // With its own ID mapping the runtime finds the root from the bundle (see mapped-root.ts).
      const specRoot = rec.idMappings ? exposeRoot(c.store.bundle(id), rootfs) : rootfs;
      const { spec, newFilter } = prepareSpec({
        rec,
        rootfs,
        specRoot,
        store: c.store,
        volumes: c.volumes,
        rootless: c.ctx.ident.rootless,
        pidOf: pidOf(c),
        runtime,
      });
      writeJsonAtomic(join(c.store.bundle(id), 'config.json'), spec, 0o600, { durable: false });
      rmSync(c.store.exitFile(id), { force: true });
      if (opts.owner) writeFileAtomic(ownerFile(c, id), String(process.pid), 0o644, { durable: false });
      else rmSync(ownerFile(c, id), { force: true });
      const conmon = await startConmon({
        id,
        name: rec.name,
        bundle: c.store.bundle(id),
        runtime,
        exitDir: c.store.exitsDir,
        socketDir: c.store.socketsDir,
        log: mode.kind === 'passthrough' ? { driver: 'passthrough' } : logConfig(c, rec),
        terminal: rec.config.tty,
        stdin: rec.config.openStdin,
        ...(mode.kind === 'passthrough' ? { stdio: mode.stdio } : {}),
        exitCommand: exitCommand(c, id, runtime),
        env: conmonEnv(),
      });
      created = true;
      // Known before the process runs: a command killed from here on leaves a record that names its monitor.
      rec.state = {
        ...rec.state,
        pid: conmon.pid,
        conmonPid: conmon.conmonPid,
        conmonStart: processStart(conmon.conmonPid) ?? 0,
      };
      c.store.write(rec);
      rememberFilter(runtime.root, id, c.store.seccompCacheDir, newFilter);
      if (beforeStart) await beforeStart(rec, conmon);
      runtime.start(id);
      rec.state = {
        ...rec.state,
        status: 'running',
        pid: conmon.pid,
        conmonPid: conmon.conmonPid,
        conmonStart: processStart(conmon.conmonPid) ?? 0,
        exitCode: 0,
        error: '',
        oomKilled: false,
        startedAt: new Date().toISOString(),
        finishedAt: '0001-01-01T00:00:00Z',
        stoppedByUser: false,
        rootfs,
        health:
          rec.config.healthcheck && rec.config.healthcheck.test[0] !== 'NONE'
            ? { status: 'starting', failingStreak: 0, log: [] }
            : undefined,
      };
      c.store.write(rec);
      if (rec.state.health) ensureSupervisor(c);
      return { rec, conmon };
    } catch (e) {
      log.debug(`start of ${id} failed: ${(e as Error).message}`);
      try {
        if (created) runtime.delete(id);
        if (mounted) {
          if (rec.idMappings) hideRoot(c.store.bundle(id));
          driver.unmountContainer(id);
        }
        if (networked) detachNetwork(c.ctx.paths, id, rec.state.network);
      } catch (undo) {
        log.warn(`could not undo the failed start of ${rec.name}: ${(undo as Error).message}`);
      }
      rec.state = { ...rec.state, error: (e as Error).message, network: undefined };
      c.store.write(rec);
      throw e;
    }
  } finally {
    lock.release();
  }
}

/** conmon and the exit command run with hutch's environment minus Node's own settings. */
export function conmonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('NODE_') || k.startsWith('_OCI_')) continue;
    env[k] = v;
  }
  return env;
}
