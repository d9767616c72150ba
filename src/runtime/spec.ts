/**
 * The OCI runtime spec (config.json) for a container, assembled from what
 * the image and the flags decided. Everything here is plain data: the caller
 * has already resolved users, parsed limits and checked that they can be
 * enforced; this file only knows the spec's shape and the peers' defaults
 * (mounts, namespaces, masked paths) for rootless and rootful use.
 */
import type { OciCapabilities, OciSeccomp } from './security.ts';
import type { OciDevice, OciDeviceCgroup, OciResources, OciRlimit } from './resources.ts';

/** A device cgroup rule for every device (`--privileged`): no type, major or minor. */
export interface DeviceWildcard {
  allow: boolean;
  access: string;
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciProcess {
  terminal: boolean;
  user: { uid: number; gid: number; additionalGids?: number[]; umask?: number };
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities;
  rlimits: OciRlimit[];
  noNewPrivileges: boolean;
  oomScoreAdj?: number;
}

export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: OciMount[];
  annotations: Record<string, string>;
  linux: {
    namespaces: { type: string; path?: string }[];
    uidMappings?: OciIdMapping[];
    gidMappings?: OciIdMapping[];
    devices: OciDevice[];
    resources: OciResources & { devices?: (OciDeviceCgroup | DeviceWildcard)[] };
    cgroupsPath?: string;
    sysctl: Record<string, string>;
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp?: OciSeccomp;
    rootfsPropagation?: string;
  };
}

export type NamespaceMode = { kind: 'private' } | { kind: 'host' } | { kind: 'path'; path: string };

export interface SpecInput {
  rootfs: string;
  /** root.path as the runtime gets it, when not `rootfs` (relative to the bundle: mapped-root.ts). */
  specRoot?: string | undefined;
  readOnly: boolean;
  process: OciProcess;
  hostname: string;
  rootless: boolean;
  /** cgroup v2 in use (a cgroup namespace and a cgroup2 mount make sense). */
  cgroupV2: boolean;
  network: NamespaceMode;
  /**
   * The network namespace at `network`'s path was made by hutch for this
   * container in the engine's user namespace, which the container shares:
   * it may mount a sysfs of its own there.
   */
  ownNetns?: boolean | undefined;
  ipc: NamespaceMode;
  pid: NamespaceMode;
  uts: NamespaceMode;
  /** A new user namespace with these mappings (--userns keep-id and friends); undefined: share the engine's. */
  userns: { uidMappings: OciIdMapping[]; gidMappings: OciIdMapping[] } | undefined;
  shmSize: number;
  /** Mounts beyond the defaults: /etc files, volumes, binds, tmpfs; they override defaults at the same place. */
  mounts: OciMount[];
  devices: OciDevice[];
  resources: OciResources & { devices?: (OciDeviceCgroup | DeviceWildcard)[] };
  cgroupsPath: string | undefined;
  sysctl: Record<string, string>;
  maskedPaths: string[];
  readonlyPaths: string[];
  seccomp: OciSeccomp | undefined;
  privileged: boolean;
  annotations: Record<string, string>;
}

function namespace(type: string, mode: NamespaceMode): { type: string; path?: string }[] {
  if (mode.kind === 'host') return [];
  if (mode.kind === 'path') return [{ type, path: mode.path }];
  return [{ type }];
}

export function defaultMounts(input: SpecInput): OciMount[] {
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: [
        'nosuid',
        'noexec',
        'newinstance',
        'ptmxmode=0666',
        'mode=0620',
        ...(input.rootless ? [] : ['gid=5']),
      ],
    },
    {
      destination: '/dev/mqueue',
      type: 'mqueue',
      source: 'mqueue',
      options: ['nosuid', 'noexec', 'nodev'],
    },
  ];
  if (input.ipc.kind !== 'host') {
    mounts.push({
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${input.shmSize}`],
    });
  } else {
    mounts.push({
      destination: '/dev/shm',
      type: 'bind',
      source: '/dev/shm',
      options: ['rbind', 'nosuid', 'noexec', 'nodev'],
    });
  }
  // sysfs can only be mounted by an owner of the network namespace: a rootless
  // container on the host's network, or on one it does not own, gets the
  // host's /sys bound instead (where /sys/class/net lists the host's links).
  const ownsNetwork = input.network.kind === 'private' || input.ownNetns === true;
  if (input.rootless && !ownsNetwork) {
    mounts.push({
      destination: '/sys',
      type: 'bind',
      source: '/sys',
      options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
    });
  } else {
    mounts.push({
      destination: '/sys',
      type: 'sysfs',
      source: 'sysfs',
      options: ['nosuid', 'noexec', 'nodev', input.privileged ? 'rw' : 'ro'],
    });
    if (!input.rootless || input.cgroupV2) {
      mounts.push({
        destination: '/sys/fs/cgroup',
        type: 'cgroup',
        source: 'cgroup',
        options: ['nosuid', 'noexec', 'nodev', 'relatime', input.privileged ? 'rw' : 'ro'],
      });
    }
  }
  return mounts;
}

export function buildSpec(input: SpecInput): OciSpec {
  const extra = new Set(input.mounts.map((m) => m.destination));
  // A user mount at a default's place replaces it (e.g. -v /dev/shm or --tmpfs /dev/shm).
  const mounts = [...defaultMounts(input).filter((m) => !extra.has(m.destination)), ...input.mounts];
  const namespaces = [
    ...namespace('pid', input.pid),
    ...namespace('network', input.network),
    ...namespace('ipc', input.ipc),
    ...namespace('uts', input.uts),
    { type: 'mount' },
    ...(input.cgroupV2 ? [{ type: 'cgroup' }] : []),
    ...(input.userns ? [{ type: 'user' }] : []),
  ];
  return {
    ociVersion: '1.0.2',
    process: input.process,
    root: { path: input.specRoot ?? input.rootfs, readonly: input.readOnly },
    ...(input.uts.kind === 'host' ? {} : { hostname: input.hostname }),
    mounts,
    annotations: input.annotations,
    linux: {
      namespaces,
      ...(input.userns
        ? { uidMappings: input.userns.uidMappings, gidMappings: input.userns.gidMappings }
        : {}),
      devices: input.devices,
      resources: input.resources,
      ...(input.cgroupsPath ? { cgroupsPath: input.cgroupsPath } : {}),
      sysctl: input.sysctl,
      maskedPaths: input.maskedPaths,
      readonlyPaths: input.readonlyPaths,
      ...(input.seccomp ? { seccomp: input.seccomp } : {}),
      rootfsPropagation: 'rprivate',
    },
  };
}
