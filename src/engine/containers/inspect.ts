/** `inspect` of containers, in Docker's JSON shape (the fields tools read). */
import { observedState } from '../../runtime/containers/liveness.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { portKey } from '../../network/ports.ts';
import type { PortBinding } from '../../network/ports.ts';
import type { Containers } from './open.ts';

const ZERO = '0001-01-01T00:00:00Z';

export function inspectContainer(c: Containers, rec: ContainerRecord): Record<string, unknown> {
  const s = observedState(rec, c.store.exitFile(rec.id));
  const h = rec.hostConfig;
  return {
    Id: rec.id,
    Created: rec.created,
    Path: [...rec.config.entrypoint, ...rec.config.cmd][0] ?? '',
    Args: [...rec.config.entrypoint, ...rec.config.cmd].slice(1),
    State: {
      Status: s.status,
      Running: s.status === 'running' || s.status === 'paused',
      Paused: s.status === 'paused',
      Restarting: false,
      OOMKilled: s.oomKilled,
      Dead: s.status === 'dead',
      Pid: s.status === 'running' || s.status === 'paused' ? s.pid : 0,
      ConmonPid: s.conmonPid,
      ExitCode: s.exitCode,
      Error: s.error,
      StartedAt: s.startedAt || ZERO,
      FinishedAt: s.finishedAt || ZERO,
      ...(s.health
        ? {
            Health: {
              Status: s.health.status,
              FailingStreak: s.health.failingStreak,
              Log: s.health.log.map((l) => ({
                Start: l.start,
                End: l.end,
                ExitCode: l.exitCode,
                Output: l.output,
              })),
            },
          }
        : {}),
    },
    Image: `sha256:${rec.config.imageId}`,
    ResolvConfPath: `${c.store.bundle(rec.id)}/resolv.conf`,
    HostnamePath: `${c.store.bundle(rec.id)}/hostname`,
    HostsPath: `${c.store.bundle(rec.id)}/hosts`,
    LogPath: h.logDriver === 'none' ? '' : (h.logOpts.path ?? c.store.logPath(rec.id)),
    Name: `/${rec.name}`,
    RestartCount: s.restartCount,
    Driver: rec.driver,
    Platform: 'linux',
    OCIRuntime: rec.runtime,
    HostConfig: {
      Binds: h.mounts
        .filter((m) => m.type === 'bind')
        .map((m) => `${m.source}:${m.destination}${m.options.length ? `:${m.options.join(',')}` : ''}`),
      LogConfig: { Type: h.logDriver === 'k8s-file' ? 'k8s-file' : h.logDriver, Config: h.logOpts },
      NetworkMode: h.networkMode,
      PortBindings: portMap(h.portBindings ?? [], (b) => ({
        HostIp: b.hostIp,
        HostPort: b.hostPort === 0 ? '' : String(b.hostPort) + (b.hostPortEnd ? `-${b.hostPortEnd}` : ''),
      })),
      PublishAllPorts: h.publishAll === true,
      PublishAllow: h.publishAllow ?? [],
      RestartPolicy: { Name: h.restartPolicy.name, MaximumRetryCount: h.restartPolicy.maximumRetryCount },
      AutoRemove: h.autoRemove,
      CapAdd: h.capAdd,
      CapDrop: h.capDrop,
      Privileged: h.privileged,
      ReadonlyRootfs: h.readOnly,
      SecurityOpt: h.securityOpt,
      Tmpfs: h.tmpfs,
      ShmSize: h.shmSize,
      Memory: h.memory,
      MemorySwap: h.memorySwap,
      NanoCpus: h.nanoCpus,
      CpuShares: h.cpuShares,
      PidsLimit: h.pidsLimit,
      ExtraHosts: h.extraHosts,
      GroupAdd: h.groupAdd,
      UsernsMode: h.userns,
      // podman's shape: container:namespace:size, per range.
      ...(rec.idMappings
        ? {
            IDMappings: {
              UidMap: rec.idMappings.uid.map((m) => `${m.containerID}:${m.hostID}:${m.size}`),
              GidMap: rec.idMappings.gid.map((m) => `${m.containerID}:${m.hostID}:${m.size}`),
            },
          }
        : {}),
      VolumesFrom: h.volumesFrom,
      Init: h.init,
      IpcMode: rec.options.ipc,
      PidMode: rec.options.pid,
      UTSMode: rec.options.uts,
      Devices: rec.options.devices,
      Ulimits: rec.options.ulimits,
    },
    Mounts: h.mounts.map((m) => ({
      Type: m.type,
      ...(m.type === 'volume' ? { Name: m.name } : {}),
      Source: m.type === 'volume' ? c.volumes.mountpoint(m.name!) : m.source,
      Destination: m.destination,
      Mode: m.options.filter((o) => o !== 'anonymous').join(','),
      RW: !m.readOnly,
      Propagation: m.type === 'bind' ? 'rprivate' : '',
    })),
    Config: {
      Hostname: rec.config.hostname,
      User: rec.config.user,
      Tty: rec.config.tty,
      OpenStdin: rec.config.openStdin,
      Env: rec.config.env,
      Cmd: rec.config.cmd,
      Image: rec.config.image,
      WorkingDir: rec.config.workingDir,
      Entrypoint: rec.config.entrypoint,
      Labels: rec.config.labels,
      StopSignal: rec.config.stopSignal,
      StopTimeout: rec.config.stopTimeout,
      ExposedPorts: Object.fromEntries(
        rec.config.exposedPorts.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}]),
      ),
      ...(rec.config.healthcheck
        ? {
            Healthcheck: {
              Test: rec.config.healthcheck.test,
              Interval: rec.config.healthcheck.intervalMs * 1e6,
              Timeout: rec.config.healthcheck.timeoutMs * 1e6,
              StartPeriod: rec.config.healthcheck.startPeriodMs * 1e6,
              Retries: rec.config.healthcheck.retries,
            },
          }
        : {}),
    },
    NetworkSettings: networkSettings(rec),
  };
}

/** docker's port map: "80/tcp" -> the bindings of that port. */
function portMap<T>(bindings: PortBinding[], shape: (b: PortBinding) => T): Record<string, T[]> {
  const out: Record<string, T[]> = {};
  for (const b of bindings) (out[portKey(b)] ??= []).push(shape(b));
  return out;
}

/** While running: the ports as published (exposed but unpublished ones as null), and the namespace. */
function networkSettings(rec: ContainerRecord): Record<string, unknown> {
  const net = rec.state.status === 'running' || rec.state.status === 'paused' ? rec.state.network : undefined;
  const ports: Record<string, unknown> = {};
  if (net) {
    for (const e of rec.config.exposedPorts) ports[e.includes('/') ? e : `${e}/tcp`] = null;
    Object.assign(
      ports,
      portMap(net.ports, (b) => ({
        HostIp: b.hostIp === '' ? '0.0.0.0' : b.hostIp,
        HostPort: String(b.hostPort),
      })),
    );
  }
  const networks: Record<string, unknown> = {};
  for (const a of rec.hostConfig.networks ?? []) {
    const addr = net?.addresses?.find((x) => x.network === a.name);
    networks[a.name] = {
      Aliases: a.aliases,
      IPAddress: addr?.ip ?? '',
      IPPrefixLen: addr?.prefix ?? 0,
      Gateway: addr?.gateway ?? '',
      GlobalIPv6Address: addr?.ip6 ?? '',
      GlobalIPv6PrefixLen: addr?.prefix6 ?? 0,
      IPv6Gateway: addr?.gateway6 ?? '',
      ...(a.ip ? { IPAMConfig: { IPv4Address: a.ip } } : {}),
    };
  }
  const first = net?.addresses?.[0];
  return {
    SandboxKey: net?.netns ?? '',
    Ports: ports,
    IPAddress: first?.ip ?? '',
    IPPrefixLen: first?.prefix ?? 0,
    Gateway: first?.gateway ?? '',
    GlobalIPv6Address: first?.ip6 ?? '',
    GlobalIPv6PrefixLen: first?.prefix6 ?? 0,
    IPv6Gateway: first?.gateway6 ?? '',
    Networks: networks,
  };
}
