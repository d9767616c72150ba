/**
 * Everything a start needs before conmon: the user resolved in the mounted
 * root, volumes and binds, the /etc files, the security settings and limits,
 * assembled into the OCI spec and written to the bundle. Rebuilt at every
 * start from the record, so nothing stale survives a restart or a reboot.
 */
import { chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { containerCgroupPath, hostCgroupLayout, userDelegation } from '../../host/cgroups.ts';
import type { CgroupLayout } from '../../host/cgroups.ts';
import { realHost } from '../../host/view.ts';
import { HutchError } from '../../util/errors.ts';
import { writeFileAtomic } from '../../util/fs-atomic.ts';
import { log } from '../../util/log.ts';
import { which } from '../../util/which.ts';
import { HOST_GATEWAY, hostsFile, parseAddHost, resolvConf } from '../etc-files.ts';
import type { AddHost } from '../etc-files.ts';
import { mergeEnv } from '../env.ts';
import { readFileInRoot, resolveInRoot } from '../in-root.ts';
import {
  availableControllers,
  buildResources,
  checkControllers,
  parseDevice,
  parseSysctls,
  parseUlimit,
} from '../resources.ts';
import {
  DEFAULT_SECCOMP_FILE,
  parseSecurityOpts,
  pathRestrictions,
  resolveCapabilities,
  seccompProfile,
  withHandoff,
} from '../security.ts';
import { BPF_ANNOTATION, cachedFilter, filterKey } from '../oci/seccomp-cache.ts';
import type { FilterKey } from '../oci/seccomp-cache.ts';
import { buildSpec } from '../spec.ts';
import type { NamespaceMode, OciMount, OciSpec } from '../spec.ts';
import { parseGroup, resolveUser } from '../user.ts';
import type { ResolvedUser } from '../user.ts';
import { lookupUser } from '../../host/passwd.ts';
import { identity, namespaceIdLimits } from '../../sys/identity.ts';
import { ownerMapper } from '../../util/idmap.ts';
import type { VolumeStore } from '../volumes.ts';
import { startMounts } from './mounts.ts';
import type { ContainerStore } from './store.ts';
import type { ContainerRecord } from './types.ts';

export const INIT_PATH = '/run/hutch-init';

export interface PrepareInput {
  rec: ContainerRecord;
  rootfs: string;
  /** What the spec names as the root, when not `rootfs` (mapped-root.ts). */
  specRoot: string;
  store: ContainerStore;
  volumes: VolumeStore;
  rootless: boolean;
  /** Another container's namespaces, for container:NAME modes. */
  pidOf: (ref: string) => number;
  /** The OCI runtime that will run it (compiled seccomp filters are per runtime). */
  runtime: { name: string; path: string };
}

export interface Prepared {
  spec: OciSpec;
  /** Set when the runtime compiles the filter this time: keep it afterwards (rememberFilter). */
  newFilter: FilterKey | undefined;
}

function nsMode(value: string, type: string, pidOf: (ref: string) => number): NamespaceMode {
  if (value === 'host') return { kind: 'host' };
  if (value.startsWith('container:'))
    return { kind: 'path', path: `/proc/${pidOf(value.slice(10))}/ns/${type}` };
  if (value.startsWith('ns:')) return { kind: 'path', path: value.slice(3) };
  return { kind: 'private' };
}

/** `--add-host NAME:host-gateway`: the address where this container reaches the host. */
const PING_GROUPS = 'net.ipv4.ping_group_range';

function withHostGateway(h: AddHost, network: string, gateway: string | undefined): AddHost {
  if (h.ip !== HOST_GATEWAY) return h;
  if (network === 'host') return { ...h, ip: '127.0.0.1' };
  if (gateway) return { ...h, ip: gateway };
  throw new HutchError(
    'NO_HOST_GATEWAY',
    `--add-host ${h.host}:host-gateway: --network ${network} has no way to the host`,
    {
      hint: 'Use the default network (pasta) or slirp4netns, or --network host.',
    },
  );
}

/**
 * Rootless containers get a cgroup of their own only under a subtree
 * delegated to the user (cgroup v2); elsewhere crun leaves them in the
 * caller's cgroup, which is fine exactly when no limit was asked for (the
 * controller check has refused limits that cannot be enforced).
 */
function rootlessCgroup(layout: CgroupLayout, id: string, wanted: boolean): string | undefined {
  if (!wanted || layout.mode !== 'v2' || !layout.v2Mount) return undefined;
  const host = realHost();
  const d = userDelegation(
    host,
    layout,
    process.getuid?.() === 0 ? outsideUid() : (process.getuid?.() ?? 0),
    host.readFile('/proc/1/comm')?.trim() === 'systemd',
  );
  if (!d?.writable) return undefined;
  return containerCgroupPath(d, layout, id);
}

/** The host uid behind namespace uid 0 (from this process's uid_map). */
function outsideUid(): number {
  const line = readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n')[0]!.trim().split(/\s+/);
  return line[0] === '0' ? Number(line[1]) : 0;
}

/** The terminal and pseudo-terminal nodes are the container's own (crun makes them); the rest the host's. */
/** Directories of device nodes worth passing (tun, GPUs, sound, input); the others hold links or mounts. */
const DEVICE_DIRS = new Set(['net', 'dri', 'snd', 'input']);

const OWN_DEVICES = new Set([
  'console',
  'tty',
  'ptmx',
  'pts',
  'shm',
  'mqueue',
  'null',
  'zero',
  'full',
  'random',
  'urandom',
]);

/**
 * `--privileged`: the host's device nodes, as docker and podman give them.
 * Rootless, crun binds them in (a user namespace cannot mknod), and those the
 * user may not open stay unusable inside, as on the host.
 */
function hostDevices(): ReturnType<typeof parseDevice> {
  const { readdirSync } = process.getBuiltinModule('node:fs');
  const out: ReturnType<typeof parseDevice> = [];
  for (const e of readdirSync('/dev', { withFileTypes: true })) {
    const wanted =
      ((e.isCharacterDevice() || e.isBlockDevice()) &&
        !OWN_DEVICES.has(e.name) &&
        !/^tty\d*$/.test(e.name)) ||
      (e.isDirectory() && DEVICE_DIRS.has(e.name));
    if (!wanted) continue;
    try {
      out.push(...parseDevice(`/dev/${e.name}`));
    } catch {
      // Gone meanwhile, or not a device after all: skip it.
    }
  }
  return out;
}

function nsOwner(rec: ContainerRecord, user: { uid: number; gid: number }): { uid: number; gid: number } {
  return rec.idMappings ? ownerMapper(rec.idMappings, 'to-namespace')(user.uid, user.gid) : user;
}

/**
 * `--userns keep-id`: the user the container runs as gets a passwd (and
 * group) entry when the image has none, named and homed as on the host,
 * as podman does: shells, `id` and programs that look themselves up work.
 * The image's files stay untouched: the edited copies are bound over them.
 */
function keptUserFiles(rec: ContainerRecord, rootfs: string, user: ResolvedUser, bundle: string): OciMount[] {
  if (!rec.options.userns.startsWith('keep-id') || user.name !== undefined) return [];
  const host = lookupUser(identity().uid);
  const name = host?.name ?? `user${user.uid}`;
  const home = host?.home ?? '/';
  const out: OciMount[] = [];
  const add = (file: 'passwd' | 'group', text: string, line: string): void => {
    if (rec.hostConfig.mounts.some((m) => m.destination === `/etc/${file}`)) return;
    const body = `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${line}\n`;
    writeFileAtomic(join(bundle, file), body, 0o644, { durable: false });
    out.push({
      destination: `/etc/${file}`,
      type: 'bind',
      source: join(bundle, file),
      options: ['bind', 'ro', 'rprivate'],
    });
  };
  add(
    'passwd',
    readFileInRoot(rootfs, '/etc/passwd') ?? '',
    `${name}:*:${user.uid}:${user.gid}:${name}:${home}:/bin/sh`,
  );
  const groupText = readFileInRoot(rootfs, '/etc/group') ?? '';
  if (!parseGroup(groupText).some((g) => g.gid === user.gid))
    add('group', groupText, `${name}:x:${user.gid}:`);
  return out;
}

export function prepareSpec(input: PrepareInput): Prepared {
  const { rec, rootfs, rootless } = input;
  const o = rec.options;
  const bundle = input.store.bundle(rec.id);
  const user = resolveUser(rootfs, rec.config.user || undefined, o.groupAdd);
  // Owners hutch gives files here: the container user's ids as this namespace has them.
  const owner = nsOwner(rec, user);
  if (user.keepGroups && rec.runtime !== 'crun') {
    throw new HutchError(
      'KEEP_GROUPS_UNSUPPORTED',
      `--group-add keep-groups needs crun; this container runs on ${rec.runtime}`,
      {
        hint: 'Create it with --runtime crun, or list the groups with --group-add GID.',
      },
    );
  }

  // docker makes a missing working directory, owned by the container's user.
  const cwd = rec.config.workingDir || '/';
  if (cwd !== '/') {
    const hostCwd = resolveInRoot(rootfs, cwd);
    if (!existsSync(hostCwd)) {
      mkdirSync(hostCwd, { recursive: true, mode: 0o755 });
      if (!o.readOnly) chownSync(hostCwd, owner.uid, owner.gid);
    }
  }

  const sec = parseSecurityOpts(o.securityOpt);
  for (const ignored of sec.ignored) log.warn(`--security-opt ${ignored} has no effect on this host`);
  const caps = resolveCapabilities({
    capAdd: o.capAdd,
    capDrop: o.capDrop,
    privileged: o.privileged,
    uid: user.uid,
  });
  const paths = pathRestrictions({ privileged: o.privileged, unmask: sec.unmask, mask: sec.mask });
  // A filter compiled for the same profile, capabilities, runtime and kernel is reused as is.
  const profileFile = typeof sec.seccomp === 'object' ? sec.seccomp.file : DEFAULT_SECCOMP_FILE;
  // A filter that hands bind() to hutch-handoff is per container (its listener's path): never cached.
  const handoff = rec.state.network?.handoffSocket;
  const handed = rec.state.network?.handoffConnect ? ['bind', 'connect'] : ['bind'];
  const key =
    o.privileged || handoff ? undefined : filterKey(input.runtime, sec.seccomp, caps.bounding, profileFile);
  const bpf = cachedFilter(input.store.seccompCacheDir, key);
  const profile =
    o.privileged || bpf !== undefined
      ? undefined
      : seccompProfile({ mode: sec.seccomp, capabilities: caps.bounding });
  const seccomp = handoff && !o.privileged ? withHandoff(profile, handoff, handed) : profile;

  const layout = hostCgroupLayout();
  const built = buildResources(o.resources);
  if (built.needs.size > 0) {
    checkControllers(built.needs, availableControllers(rootless), built.requestedBy);
  }
  const cgroupV2 = layout.mode === 'v2';
  const cgroupsPath = rootless ? rootlessCgroup(layout, rec.id, built.needs.size > 0) : `/hutch/${rec.id}`;

  const devices = [...(o.privileged ? hostDevices() : []), ...o.devices.flatMap((d) => parseDevice(d))];
  const rlimits = o.ulimits.map((u) => parseUlimit(u, { rootless }));
  const sysctl = parseSysctls(o.sysctls, {
    hostNetwork: o.network === 'host',
    hostIpc: o.ipc === 'host',
    hostUts: o.uts === 'host',
  });

  const attached = rec.state.network;
  // ping without privileges (ICMP sockets), as docker allows: every group of the namespace. Not with a
  // user namespace of the container's own, which may not write the sysctls of a network namespace hutch made.
  if ((attached || o.network === 'none') && !rec.idMappings && sysctl[PING_GROUPS] === undefined) {
    sysctl[PING_GROUPS] = `0 ${Math.min(namespaceIdLimits().maxGid, 2147483647)}`;
  }
  const network: NamespaceMode = attached
    ? { kind: 'path', path: attached.netns }
    : nsMode(o.network, 'net', input.pidOf);
  const etcMounts: OciMount[] = [];
  const hostsText = hostsFile({
    hostname: rec.config.hostname,
    addHosts: o.addHosts.map((h) => withHostGateway(parseAddHost(h), o.network, attached?.hostGateway)),
    containerIps: attached?.addresses?.flatMap((a) => (a.ip6 ? [a.ip, a.ip6] : [a.ip])),
    extra: attached?.hostGateway
      ? `${attached.hostGateway}\thost.containers.internal host.docker.internal\n`
      : undefined,
  });
  writeFileAtomic(join(bundle, 'hosts'), hostsText, 0o644, { durable: false });
  let hostResolv = '';
  try {
    hostResolv = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // No resolv.conf on the host: the container gets docker's fallback.
  }
  const netKind = o.network === 'host' ? 'host' : o.network === 'none' ? 'none' : 'private';
  writeFileAtomic(
    join(bundle, 'resolv.conf'),
    resolvConf({
      hostResolvConf: hostResolv,
      // On user networks the gateway answers: container names first, the rest forwarded.
      dns: o.dns.length === 0 && attached?.mode === 'bridge' ? attached.dns : o.dns,
      dnsSearch: o.dnsSearch,
      dnsOptions: o.dnsOptions,
      network: netKind,
      networkDns: attached?.dns,
    }),
    0o644,
    { durable: false },
  );
  for (const f of ['hosts', 'hostname', 'resolv.conf']) {
    if (rec.hostConfig.mounts.some((m) => m.destination === `/etc/${f}`)) continue;
    etcMounts.push({
      destination: `/etc/${f}`,
      type: 'bind',
      source: join(bundle, f),
      options: ['bind', 'rprivate'],
    });
  }

  const mounts = [
    ...etcMounts,
    ...startMounts({
      mounts: rec.hostConfig.mounts,
      rootfs,
      volumes: input.volumes,
      uid: owner.uid,
      gid: owner.gid,
    }),
    ...keptUserFiles(rec, rootfs, user, bundle),
  ];
  let args = [...rec.config.entrypoint, ...rec.config.cmd];
  const env = mergeEnv({
    image: rec.config.env,
    hostname: rec.config.hostname,
    tty: rec.config.tty,
    files: [],
    flags: [],
  });
  checkExecutable(
    rootfs,
    args[0]!,
    env,
    cwd,
    mounts.map((m) => m.destination),
  );
  if (o.init) {
    const init = which('catatonit');
    if (!init) {
      throw new HutchError('NO_INIT', '--init needs catatonit, which is not installed', {
        hint: 'Install it: apt install catatonit.',
      });
    }
    mounts.push({ destination: INIT_PATH, type: 'bind', source: init, options: ['bind', 'ro'] });
    args = [INIT_PATH, '--', ...args];
  }

  const spec = buildSpec({
    rootfs,
    specRoot: input.specRoot,
    readOnly: o.readOnly,
    process: {
      terminal: rec.config.tty,
      user: {
        uid: user.uid,
        gid: user.gid,
        ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}),
      },
      args,
      env: mergeEnv({
        image: rec.config.env,
        hostname: rec.config.hostname,
        tty: rec.config.tty,
        files: [],
        flags: [],
      }),
      cwd,
      capabilities: caps,
      rlimits,
      noNewPrivileges: sec.noNewPrivileges,
    },
    hostname: rec.config.hostname,
    rootless,
    cgroupV2,
    network,
    // Made by hutch in its own user namespace; a container with a user namespace of its own does not own it.
    ownNetns: attached !== undefined && !rec.idMappings,
    ipc: nsMode(o.ipc, 'ipc', input.pidOf),
    pid: nsMode(o.pid, 'pid', input.pidOf),
    uts: nsMode(o.uts, 'uts', input.pidOf),
    userns: rec.idMappings ? { uidMappings: rec.idMappings.uid, gidMappings: rec.idMappings.gid } : undefined,
    shmSize: o.shmSize,
    mounts,
    devices: devices.map((d) => d.device),
    resources: {
      ...built.resources,
      // Privileged: every device may be used (rootful cgroups would otherwise deny those not listed).
      ...(o.privileged
        ? { devices: [{ allow: true, access: 'rwm' }] }
        : devices.length
          ? { devices: devices.map((d) => d.allow) }
          : {}),
    },
    cgroupsPath,
    sysctl,
    maskedPaths: paths.maskedPaths,
    readonlyPaths: paths.readonlyPaths,
    seccomp,
    privileged: o.privileged,
    annotations: {
      'io.hutch.container.name': rec.name,
      ...(bpf !== undefined ? { [BPF_ANNOTATION]: bpf } : {}),
      // --group-add keep-groups: the user's own supplementary groups go with the process (crun's extension).
      ...(user.keepGroups ? { 'run.oci.keep_original_groups': '1' } : {}),
    },
  });
  return { spec, newFilter: seccomp && key ? key : undefined };
}

/**
 * Finds the command in the container's root as the runtime will (a path, or
 * a name searched in the container's PATH), so that a missing or
 * non-executable command gets docker's exit codes (127, 126) and a clear
 * message whatever the runtime and however its errors travel.
 */
export function checkExecutable(
  rootfs: string,
  command: string,
  env: string[],
  cwd: string,
  mountPoints: string[] = [],
): void {
  const { statSync } = process.getBuiltinModule('node:fs');
  // A program may come with a mount (-v /host/tool:/tool): only the runtime sees it.
  const underMount = (p: string): boolean =>
    mountPoints.some((m) => p === m || p.startsWith(m.endsWith('/') ? m : `${m}/`));
  const candidates: string[] = [];
  if (command.includes('/')) {
    candidates.push(command.startsWith('/') ? command : `${cwd.replace(/\/$/, '')}/${command}`);
  } else {
    const path = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '';
    for (const dir of path.split(':')) if (dir) candidates.push(`${dir.replace(/\/$/, '')}/${command}`);
  }
  let notExecutable: string | undefined;
  for (const c of candidates) {
    if (underMount(c)) return;
    let st;
    try {
      st = statSync(resolveInRoot(rootfs, c));
    } catch {
      continue;
    }
    if (st.isFile() && (st.mode & 0o111) !== 0) return;
    notExecutable ??= c;
  }
  if (notExecutable !== undefined) {
    throw new HutchError(
      'CMD_CANNOT_INVOKE',
      `${notExecutable}: permission denied: the file is not an executable program`,
      {
        hint: 'Check the command: it names a directory or a file without execute permission.',
        exitCode: 126,
      },
    );
  }
  throw new HutchError(
    'CMD_NOT_FOUND',
    command.includes('/')
      ? `${command}: no such file or directory in the container`
      : `executable file "${command}" not found in $PATH`,
    { hint: 'Check the command and the image: the program must exist inside the container.', exitCode: 127 },
  );
}
