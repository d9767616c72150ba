/**
 * The cgroup layout of the host and what of it a user may use.
 *
 * - v2 (unified): one cgroup2 hierarchy at /sys/fs/cgroup.
 * - v1 (legacy): one cgroup hierarchy per controller under a tmpfs at
 *   /sys/fs/cgroup.
 * - hybrid: v1 controller hierarchies plus a cgroup2 hierarchy, usually at
 *   /sys/fs/cgroup/unified. crun refuses this layout as soon as the v2
 *   hierarchy holds any controller ("cgroups in hybrid mode not supported,
 *   drop all controllers from cgroupv2"); runc does not mind.
 *
 * A controller not bound to a v1 hierarchy shows up in the v2 hierarchy's
 * cgroup.controllers, so mounting it as a v1 hierarchy takes it out of v2.
 */
import { realHost } from './view.ts';
import type { HostView } from './view.ts';

export interface MountInfo {
  mountPoint: string;
  root: string;
  fsType: string;
  source: string;
  superOptions: string[];
}

/** Undoes mountinfo's octal escapes (\040 for a space, ...). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** Parses /proc/PID/mountinfo (proc(5)); lines that do not parse are skipped. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    const sep = fields.indexOf('-');
    if (sep < 6 || fields.length < sep + 3) continue;
    out.push({
      root: unescape(fields[3] ?? ''),
      mountPoint: unescape(fields[4] ?? ''),
      fsType: fields[sep + 1] ?? '',
      source: unescape(fields[sep + 2] ?? ''),
      superOptions: (fields[sep + 3] ?? '').split(',').filter((o) => o !== ''),
    });
  }
  return out;
}

/** The controllers a v1 hierarchy can carry (the rest of its options are flags such as rw or name=). */
export const V1_CONTROLLERS: readonly string[] = [
  'cpuset',
  'cpu',
  'cpuacct',
  'blkio',
  'memory',
  'devices',
  'freezer',
  'net_cls',
  'perf_event',
  'net_prio',
  'hugetlb',
  'pids',
  'rdma',
  'misc',
];

export type CgroupMode = 'v2' | 'v1' | 'hybrid' | 'none';

export interface V1Hierarchy {
  mountPoint: string;
  controllers: string[];
  /** A named hierarchy without controllers, e.g. name=systemd. */
  name: string | undefined;
}

export interface CgroupLayout {
  mode: CgroupMode;
  /** Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup or, in hybrid mode, usually /sys/fs/cgroup/unified). */
  v2Mount: string | undefined;
  /** The controllers of the v2 hierarchy's root (its cgroup.controllers). */
  v2Controllers: string[];
  v1: V1Hierarchy[];
  /** How the layout was found. */
  source: 'mountinfo' | 'sysfs';
}

function words(text: string | undefined): string[] {
  return (text ?? '').split(/\s+/).filter((w) => w !== '');
}

function layoutFromMounts(host: HostView, mounts: MountInfo[]): CgroupLayout {
  const v2 = mounts.filter((m) => m.fsType === 'cgroup2');
  // Prefer the host's own hierarchy over bind mounts of it elsewhere.
  const v2Mount =
    v2.find((m) => m.mountPoint === '/sys/fs/cgroup')?.mountPoint ??
    v2.find((m) => m.mountPoint === '/sys/fs/cgroup/unified')?.mountPoint ??
    v2[0]?.mountPoint;
  const v1: V1Hierarchy[] = mounts
    .filter((m) => m.fsType === 'cgroup')
    .map((m) => ({
      mountPoint: m.mountPoint,
      controllers: m.superOptions.filter((o) => V1_CONTROLLERS.includes(o)),
      name: m.superOptions.find((o) => o.startsWith('name='))?.slice('name='.length),
    }));
  const v1WithControllers = v1.some((h) => h.controllers.length > 0);
  const mode: CgroupMode =
    v2Mount !== undefined ? (v1WithControllers ? 'hybrid' : 'v2') : v1.length > 0 ? 'v1' : 'none';
  const v2Controllers = v2Mount ? words(host.readFile(`${v2Mount}/cgroup.controllers`)) : [];
  return { mode, v2Mount, v2Controllers, v1, source: 'mountinfo' };
}

/** Without mountinfo: guess from what /sys/fs/cgroup holds. */
function layoutFromSysfs(host: HostView): CgroupLayout {
  const base = '/sys/fs/cgroup';
  if (host.exists(`${base}/cgroup.controllers`)) {
    return {
      mode: 'v2',
      v2Mount: base,
      v2Controllers: words(host.readFile(`${base}/cgroup.controllers`)),
      v1: [],
      source: 'sysfs',
    };
  }
  const entries = host.listDir(base) ?? [];
  const v1: V1Hierarchy[] = entries
    .filter((e) => e !== 'unified' && host.exists(`${base}/${e}/cgroup.procs`))
    .map((e) => ({
      mountPoint: `${base}/${e}`,
      controllers: e.split(',').filter((c) => V1_CONTROLLERS.includes(c)),
      name: V1_CONTROLLERS.includes(e.split(',')[0] ?? '') ? undefined : e,
    }));
  const unified = host.exists(`${base}/unified/cgroup.controllers`) ? `${base}/unified` : undefined;
  const mode: CgroupMode = unified ? (v1.length > 0 ? 'hybrid' : 'v2') : v1.length > 0 ? 'v1' : 'none';
  return {
    mode,
    v2Mount: unified,
    v2Controllers: unified ? words(host.readFile(`${unified}/cgroup.controllers`)) : [],
    v1,
    source: 'sysfs',
  };
}

export function cgroupLayout(host: HostView): CgroupLayout {
  const text = host.readFile('/proc/self/mountinfo');
  const mounts = text === undefined ? [] : parseMountInfo(text);
  if (mounts.some((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2'))
    return layoutFromMounts(host, mounts);
  return layoutFromSysfs(host);
}

let hostLayout: CgroupLayout | undefined;

/**
 * This host's layout, read once per command: a container's start asks for it
 * twice (the runtime's choice, the spec), and /proc/self/mountinfo in the
 * user's namespace lists every container's mounts. Setup, which changes
 * cgroup mounts, reads its own.
 */
export function hostCgroupLayout(): CgroupLayout {
  return (hostLayout ??= cgroupLayout(realHost()));
}

/** crun refuses a hybrid host whose v2 hierarchy holds controllers. */
export function crunRefusesHybrid(layout: CgroupLayout): boolean {
  return layout.mode === 'hybrid' && layout.v2Controllers.length > 0;
}

/** The commands that move each v2 controller of a hybrid host to its own v1 hierarchy ("sudo " as `prefix` for a user). */
export function hybridFixCommands(layout: CgroupLayout, prefix = ''): string[] {
  return layout.v2Controllers.map(
    (c) =>
      `${prefix}mkdir -p /sys/fs/cgroup/${c} && ${prefix}mount -t cgroup -o ${c} cgroup /sys/fs/cgroup/${c}`,
  );
}

/** The v2 cgroup this process is in, from the "0::PATH" line of /proc/self/cgroup. */
export function ownV2Cgroup(host: HostView): string | undefined {
  for (const line of (host.readFile('/proc/self/cgroup') ?? '').split('\n')) {
    if (line.startsWith('0::')) return line.slice(3).trim();
  }
  return undefined;
}

/**
 * Where `hutch setup` delegates a piece of the v2 hierarchy to a user on
 * hosts whose init is not systemd, relative to the v2 mount. The user owns
 * this directory (and its cgroup.procs, cgroup.subtree_control,
 * cgroup.threads); their processes run in leaves below it (`boot` for the
 * boot service, `login` for PAM sessions), since a cgroup that hands
 * controllers to its children may hold no process itself. Containers go
 * beside those leaves. Setup (engine) and the engine's choice (here) share it.
 */
export function delegatedSubtree(uid: number): string {
  return `/hutch/user-${uid}`;
}

/** The leaves of the delegated subtree where the boot service and login sessions run. */
export const SUBTREE_LEAVES = { boot: 'boot', login: 'login' } as const;

export interface Delegation {
  /** The cgroup directory examined, e.g. /sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service. */
  path: string;
  /**
   * systemd's per-user service (systemd is PID 1), the subtree `hutch setup`
   * delegated (this process runs inside it), or the cgroup this process runs in.
   */
  source: 'systemd-user-service' | 'hutch-setup' | 'own-cgroup';
  exists: boolean;
  /** The user may create child cgroups and move processes there. */
  writable: boolean;
  /** The controllers available to child cgroups (its cgroup.controllers). */
  controllers: string[];
}

/** What of the v2 hierarchy has been handed to `uid` (systemd's Delegate= of user@UID.service, or a chown). */
export function userDelegation(
  host: HostView,
  layout: CgroupLayout,
  uid: number,
  systemdPid1: boolean,
): Delegation | undefined {
  if (layout.mode !== 'v2' || layout.v2Mount === undefined) return undefined;
  const mount = layout.v2Mount;
  let path: string;
  let source: Delegation['source'];
  if (systemdPid1) {
    path = `${mount}/user.slice/user-${uid}.slice/user@${uid}.service`;
    source = 'systemd-user-service';
  } else {
    const own = ownV2Cgroup(host);
    if (own === undefined) return undefined;
    const subtree = delegatedSubtree(uid);
    if (own === subtree || own.startsWith(`${subtree}/`)) {
      // Inside setup's subtree: containers go beside this process's leaf, in the part the user owns.
      path = `${mount}${subtree}`;
      source = 'hutch-setup';
    } else {
      path = own === '/' ? mount : `${mount}${own}`;
      source = 'own-cgroup';
    }
  }
  const dir = host.stat(path);
  if (!dir?.isDir) return { path, source, exists: false, writable: false, controllers: [] };
  const writable = uid === 0 || (dir.uid === uid && (dir.mode & 0o200) !== 0);
  return {
    path,
    source,
    exists: true,
    writable,
    controllers: words(host.readFile(`${path}/cgroup.controllers`)),
  };
}

/**
 * The cgroups path (relative to the v2 mount, as the OCI spec wants it) of a
 * rootless container under a delegation: beside this process's leaf, in
 * the part the user owns (user@UID.service/hutch-ID, or
 * hutch/user-UID/hutch-ID for hutch setup's subtree).
 */
export function containerCgroupPath(d: Delegation, layout: CgroupLayout, id: string): string {
  return `${d.path.slice((layout.v2Mount ?? '').length) || ''}/hutch-${id}`;
}
