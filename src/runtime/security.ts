/**
 * A container's confinement beyond namespaces: capabilities, masked and
 * read-only /proc and /sys paths, the seccomp filter, and the --security-opt
 * values that tune them. Everything here follows docker's and podman's
 * defaults and flag semantics, so images and scripts written for them behave
 * the same under hutch.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { resolve } from 'node:path';
import { atLeast, kernelRelease, parseKernelRelease, parseVersion } from '../host/kernel.ts';
import type { Version } from '../host/kernel.ts';
import { errnoCode, HutchError } from '../util/errors.ts';

// ---------------------------------------------------------------------------
// Capabilities

/** The OCI process.capabilities object. */
export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

/** Every capability name, indexed by its number (linux/capability.h); CAP_CHECKPOINT_RESTORE (40) is the newest. */
export const KNOWN_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** podman's default set (containers.conf default_capabilities). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
];

/** The number of the highest capability the running kernel knows, or undefined when /proc does not say. */
export function kernelLastCap(): number | undefined {
  try {
    const n = Number.parseInt(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim(), 10);
    return Number.isInteger(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Every capability the running kernel knows (read at each call: a container may run on a newer kernel than hutch was written for). */
export function allCapabilities(lastCap: number | undefined = kernelLastCap()): string[] {
  return KNOWN_CAPABILITIES.slice(0, lastCap === undefined ? undefined : lastCap + 1);
}

const CAPABILITY_HINT =
  'Capabilities are named as in capabilities(7) (`man 7 capabilities`), with or without the CAP_ prefix and in any case: NET_ADMIN, cap_net_admin; ALL stands for every one.';

/** 'net_admin', 'CAP_NET_ADMIN' → 'CAP_NET_ADMIN'; 'all' → 'ALL'. */
function normalizeCapability(raw: string, known: readonly string[]): string {
  const upper = raw.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (known.includes(name)) return name;
  if (KNOWN_CAPABILITIES.includes(name))
    throw new HutchError('BAD_CAPABILITY', `the running kernel does not know capability ${name}`, {
      hint: `This kernel knows ${known.length} capabilities, up to ${known.at(-1) ?? 'none'}; drop ${raw} from --cap-add/--cap-drop.`,
    });
  throw new HutchError('BAD_CAPABILITY', `unknown capability "${raw}"`, { hint: CAPABILITY_HINT });
}

export interface CapabilityRequest {
  capAdd?: readonly string[] | undefined;
  capDrop?: readonly string[] | undefined;
  privileged?: boolean | undefined;
  /** The uid the container's process runs as. */
  uid: number;
  /** For tests: the kernel's highest capability number (default: /proc/sys/kernel/cap_last_cap). */
  lastCap?: number | undefined;
}

/**
 * The capability sets of the container's process, with docker's semantics:
 * --privileged gives every capability; otherwise drops apply after adds,
 * except that --cap-drop ALL keeps exactly what --cap-add names.
 */
export function resolveCapabilities(req: CapabilityRequest): OciCapabilities {
  const known = allCapabilities(req.lastCap ?? kernelLastCap());
  const add = (req.capAdd ?? []).map((c) => normalizeCapability(c, known));
  const drop = (req.capDrop ?? []).map((c) => normalizeCapability(c, known));
  let caps: Set<string>;
  if (req.privileged) caps = new Set(known);
  else if (drop.includes('ALL')) caps = new Set(add.includes('ALL') ? known : add);
  else {
    caps = new Set(add.includes('ALL') ? known : [...DEFAULT_CAPABILITIES, ...add]);
    for (const c of drop) caps.delete(c);
  }
  // Kernel order keeps the spec stable whatever order the flags came in.
  const bounding = known.filter((c) => caps.has(c));
  // A non-root process starts with no effective capabilities, as under
  // docker; the bounding set still limits what setuid binaries can gain.
  const root = req.uid === 0;
  return {
    bounding,
    effective: root ? [...bounding] : [],
    permitted: root ? [...bounding] : [],
    // Empty since CVE-2022-24769: inheritable capabilities would survive
    // execve of binaries with inheritable file capabilities.
    inheritable: [],
    ambient: [],
  };
}

// ---------------------------------------------------------------------------
// Masked and read-only paths

/** Paths hidden from the container (bind-mounted over with /dev/null or an empty tmpfs), as docker and podman do. */
export const MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/fs/selinux',
  '/sys/dev/block',
  '/proc/interrupts',
  '/sys/devices/virtual/powercap',
];

/** Paths the container may read but not write. */
export const READONLY_PATHS: readonly string[] = [
  '/proc/asound',
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

/** A podman unmask pattern: a path, ALL, or a shell glob such as /proc/*. */
function unmaskMatches(pattern: string, path: string): boolean {
  if (pattern === 'ALL') return true;
  if (!pattern.includes('*')) return pattern === path;
  const re = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*');
  return new RegExp(`^${re}$`).test(path);
}

/** The OCI linux.maskedPaths and linux.readonlyPaths: none for --privileged; --security-opt unmask/mask adjust the defaults. */
export function pathRestrictions(opts: {
  privileged?: boolean | undefined;
  unmask?: readonly string[] | undefined;
  mask?: readonly string[] | undefined;
}): { maskedPaths: string[]; readonlyPaths: string[] } {
  const unmask = opts.unmask ?? [];
  const keep = (p: string): boolean => !unmask.some((u) => unmaskMatches(u, p));
  const masked = opts.privileged ? [] : MASKED_PATHS.filter(keep);
  for (const m of opts.mask ?? []) if (!masked.includes(m)) masked.push(m);
  return { maskedPaths: masked, readonlyPaths: opts.privileged ? [] : READONLY_PATHS.filter(keep) };
}

// ---------------------------------------------------------------------------
// Seccomp

export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface OciSeccompSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

/** The OCI linux.seccomp object. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: OciSeccompSyscall[];
}

/** When a rule of a docker-style profile applies. */
interface RuleFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

interface ProfileRule extends OciSeccompSyscall {
  includes?: RuleFilter;
  excludes?: RuleFilter;
}

interface ArchMapEntry {
  architecture: string;
  subArchitectures: string[];
}

/** A profile as read: docker/containers-common form, or plain OCI form (which is the same without filters and archMap). */
interface Profile extends Omit<OciSeccomp, 'syscalls'> {
  archMap?: ArchMapEntry[];
  syscalls: ProfileRule[];
}

export const DEFAULT_SECCOMP_FILE = '/usr/share/containers/seccomp.json';

export type SeccompMode = 'default' | 'unconfined' | { file: string };

const ACTIONS = new Set([
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
]);

const OPERATORS = new Set([
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
]);

/**
 * Node's process.arch → the names a profile's includes.arches may use (Go's
 * GOARCH, as docker and containers-common write them, and the kernel's
 * uname -m) and the libseccomp architecture.
 */
function hostArch(nodeArch: string): { names: string[]; scmp: string | undefined } {
  const little = endianness() === 'LE';
  switch (nodeArch) {
    case 'x64':
      return { names: ['amd64', 'x86_64'], scmp: 'SCMP_ARCH_X86_64' };
    case 'ia32':
      return { names: ['386', 'x86', 'i386'], scmp: 'SCMP_ARCH_X86' };
    case 'arm64':
      return { names: ['arm64', 'aarch64'], scmp: 'SCMP_ARCH_AARCH64' };
    case 'arm':
      return { names: ['arm'], scmp: 'SCMP_ARCH_ARM' };
    case 'ppc64':
      return little
        ? { names: ['ppc64le'], scmp: 'SCMP_ARCH_PPC64LE' }
        : { names: ['ppc64'], scmp: 'SCMP_ARCH_PPC64' };
    case 's390x':
      return { names: ['s390x'], scmp: 'SCMP_ARCH_S390X' };
    case 'mips64el':
      return { names: ['mips64le'], scmp: 'SCMP_ARCH_MIPSEL64' };
    case 'riscv64':
      return { names: ['riscv64'], scmp: 'SCMP_ARCH_RISCV64' };
    case 'loong64':
      return { names: ['loong64', 'loongarch64'], scmp: 'SCMP_ARCH_LOONGARCH64' };
    default:
      return { names: [nodeArch], scmp: undefined };
  }
}

/**
 * Used only when containers-common's profile is not installed. Its default is
 * to allow, so it is weaker than that profile (which denies every syscall it
 * does not list): it refuses only the syscalls that reach outside the
 * container's namespaces, each unless the capability that would make it
 * legitimate is in the bounding set. Rules without a capability are always
 * refused (the kernel keyring and kexec are not namespaced).
 */
const FALLBACK_DENIALS: ReadonlyArray<[string | undefined, string[]]> = [
  [undefined, ['add_key', 'keyctl', 'request_key', 'kexec_file_load', 'kexec_load', 'userfaultfd']],
  [
    'CAP_SYS_ADMIN',
    [
      'bpf',
      'fsmount',
      'fsopen',
      'fspick',
      'lookup_dcookie',
      'mount',
      'move_mount',
      'open_tree',
      'perf_event_open',
      'pivot_root',
      'quotactl',
      'setns',
      'swapoff',
      'swapon',
      'umount2',
      'unshare',
    ],
  ],
  ['CAP_SYS_TIME', ['clock_adjtime', 'clock_settime', 'settimeofday', 'stime']],
  ['CAP_SYS_MODULE', ['delete_module', 'finit_module', 'init_module']],
  ['CAP_SYS_BOOT', ['reboot']],
  ['CAP_SYS_PTRACE', ['process_vm_readv', 'process_vm_writev', 'ptrace']],
  ['CAP_SYSLOG', ['syslog']],
  ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
  ['CAP_SYS_PACCT', ['acct']],
  ['CAP_DAC_READ_SEARCH', ['name_to_handle_at', 'open_by_handle_at']],
];

function fallbackProfile(): Profile {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    // The compat ABIs get the same denials; without them their syscalls would be killed.
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: FALLBACK_DENIALS.map(([cap, names]) => ({
      names,
      action: 'SCMP_ACT_ERRNO',
      errnoRet: 1, // EPERM
      ...(cap ? { excludes: { caps: [cap] } } : {}),
    })),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

/** JSON numbers beyond 2^53 have already lost digits; refusing them beats filtering on a wrong value. */
function exactNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function checkFilter(v: unknown, where: string): RuleFilter | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new Error(`${where} is not an object`);
  const f: RuleFilter = {};
  if (v.caps !== undefined && v.caps !== null) {
    if (!isStringArray(v.caps)) throw new Error(`${where}.caps is not a list of names`);
    f.caps = v.caps;
  }
  if (v.arches !== undefined && v.arches !== null) {
    if (!isStringArray(v.arches)) throw new Error(`${where}.arches is not a list of names`);
    f.arches = v.arches;
  }
  if (v.minKernel !== undefined && v.minKernel !== null && v.minKernel !== '') {
    if (typeof v.minKernel !== 'string' || !parseVersion(v.minKernel))
      throw new Error(`${where}.minKernel is not a kernel version`);
    f.minKernel = v.minKernel;
  }
  return f;
}

function checkArg(v: unknown, where: string): OciSeccompArg {
  if (!isObject(v)) throw new Error(`${where} is not an object`);
  if (!exactNumber(v.index) || v.index > 5) throw new Error(`${where}.index must be 0 to 5`);
  if (!exactNumber(v.value)) throw new Error(`${where}.value is not a number JSON can carry exactly`);
  if (v.valueTwo !== undefined && !exactNumber(v.valueTwo))
    throw new Error(`${where}.valueTwo is not a number JSON can carry exactly`);
  if (typeof v.op !== 'string' || !OPERATORS.has(v.op))
    throw new Error(`${where}.op is not an SCMP_CMP_ operator`);
  return {
    index: v.index,
    value: v.value,
    ...(v.valueTwo !== undefined ? { valueTwo: v.valueTwo } : {}),
    op: v.op,
  };
}

function checkRule(v: unknown, where: string): ProfileRule {
  if (!isObject(v)) throw new Error(`${where} is not an object`);
  // Old docker profiles name one syscall per rule.
  const names = typeof v.name === 'string' && v.names === undefined ? [v.name] : v.names;
  if (!isStringArray(names) || names.length === 0)
    throw new Error(`${where}.names is not a list of syscalls`);
  if (typeof v.action !== 'string' || !ACTIONS.has(v.action))
    throw new Error(`${where}.action "${String(v.action)}" is not an SCMP_ACT_ action`);
  const rule: ProfileRule = { names, action: v.action };
  if (v.errnoRet !== undefined && v.errnoRet !== null) {
    if (!exactNumber(v.errnoRet)) throw new Error(`${where}.errnoRet is not a number`);
    rule.errnoRet = v.errnoRet;
  }
  if (v.args !== undefined && v.args !== null) {
    if (!Array.isArray(v.args)) throw new Error(`${where}.args is not a list`);
    if (v.args.length > 0) rule.args = v.args.map((a, i) => checkArg(a, `${where}.args[${i}]`));
  }
  const includes = checkFilter(v.includes, `${where}.includes`);
  const excludes = checkFilter(v.excludes, `${where}.excludes`);
  if (includes) rule.includes = includes;
  if (excludes) rule.excludes = excludes;
  return rule;
}

/** The profile in `data`, or an Error saying what is wrong with its shape. */
function checkProfile(data: unknown): Profile {
  if (!isObject(data)) throw new Error('the top level is not an object');
  if (typeof data.defaultAction !== 'string' || !ACTIONS.has(data.defaultAction))
    throw new Error('defaultAction is missing or not an SCMP_ACT_ action');
  const p: Profile = { defaultAction: data.defaultAction, syscalls: [] };
  if (data.defaultErrnoRet !== undefined && data.defaultErrnoRet !== null) {
    if (!exactNumber(data.defaultErrnoRet)) throw new Error('defaultErrnoRet is not a number');
    p.defaultErrnoRet = data.defaultErrnoRet;
  }
  if (data.architectures !== undefined && data.architectures !== null) {
    if (!isStringArray(data.architectures)) throw new Error('architectures is not a list of names');
    p.architectures = data.architectures;
  }
  if (data.archMap !== undefined && data.archMap !== null) {
    if (!Array.isArray(data.archMap)) throw new Error('archMap is not a list');
    p.archMap = data.archMap.map((e, i) => {
      if (!isObject(e) || typeof e.architecture !== 'string')
        throw new Error(`archMap[${i}] has no architecture`);
      const sub = e.subArchitectures ?? [];
      if (!isStringArray(sub)) throw new Error(`archMap[${i}].subArchitectures is not a list of names`);
      return { architecture: e.architecture, subArchitectures: sub };
    });
  }
  if (data.flags !== undefined && data.flags !== null) {
    if (!isStringArray(data.flags)) throw new Error('flags is not a list of names');
    p.flags = data.flags;
  }
  if (typeof data.listenerPath === 'string') p.listenerPath = data.listenerPath;
  if (typeof data.listenerMetadata === 'string') p.listenerMetadata = data.listenerMetadata;
  if (data.syscalls !== undefined && data.syscalls !== null) {
    if (!Array.isArray(data.syscalls)) throw new Error('syscalls is not a list');
    p.syscalls = data.syscalls.map((r, i) => checkRule(r, `syscalls[${i}]`));
  }
  return p;
}

/** Parsed profiles by file; null marks a file found missing. One parse per process: profiles do not change under a command. */
const profiles = new Map<string, Profile | null>();

function badSeccomp(file: string, why: string, cause?: unknown): HutchError {
  return new HutchError('BAD_SECCOMP', `seccomp profile ${file}: ${why}`, {
    hint: 'Give --security-opt seccomp=FILE a JSON profile in docker/containers-common or OCI form, or seccomp=unconfined to run without one.',
    cause,
  });
}

/** The profile in `file`, null if it does not exist; throws BAD_SECCOMP if it cannot be used. */
function loadProfile(file: string): Profile | null {
  const cached = profiles.get(file);
  if (cached !== undefined) return cached;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw badSeccomp(file, `cannot be read (${errnoCode(e) ?? String(e)})`, e);
    profiles.set(file, null);
    return null;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw badSeccomp(file, `is not JSON (${(e as Error).message})`, e);
  }
  let profile: Profile;
  try {
    profile = checkProfile(data);
  } catch (e) {
    throw badSeccomp(file, `is not a seccomp profile: ${(e as Error).message}`, e);
  }
  profiles.set(file, profile);
  return profile;
}

interface Target {
  caps: ReadonlySet<string>;
  archNames: readonly string[];
  kernel: Version | undefined;
}

function ruleApplies(rule: ProfileRule, t: Target): boolean {
  const inc = rule.includes;
  const exc = rule.excludes;
  if (inc?.caps && !inc.caps.every((c) => t.caps.has(c))) return false;
  if (exc?.caps?.some((c) => t.caps.has(c))) return false;
  if (inc?.arches && inc.arches.length > 0 && !inc.arches.some((a) => t.archNames.includes(a))) return false;
  if (exc?.arches?.some((a) => t.archNames.includes(a))) return false;
  if (inc?.minKernel) {
    const min = parseVersion(inc.minKernel);
    // An unknown kernel gets the stricter profile: minKernel rules widen it.
    if (!t.kernel || !min || !atLeast(t.kernel, min)) return false;
  }
  return true;
}

function toOci(p: Profile, t: Target, scmpArch: string | undefined): OciSeccomp {
  const out: OciSeccomp = { defaultAction: p.defaultAction };
  if (p.defaultErrnoRet !== undefined) out.defaultErrnoRet = p.defaultErrnoRet;
  const mapped = p.archMap?.find((e) => e.architecture === scmpArch);
  if (mapped) out.architectures = [mapped.architecture, ...mapped.subArchitectures];
  else if (p.architectures) out.architectures = [...p.architectures];
  else if (p.archMap && scmpArch) out.architectures = [scmpArch];
  if (p.flags) out.flags = [...p.flags];
  if (p.listenerPath !== undefined) out.listenerPath = p.listenerPath;
  if (p.listenerMetadata !== undefined) out.listenerMetadata = p.listenerMetadata;
  out.syscalls = p.syscalls
    .filter((r) => ruleApplies(r, t))
    .map((r) => ({
      names: [...r.names],
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args ? { args: r.args.map((a) => ({ ...a })) } : {}),
    }));
  return out;
}

export interface SeccompRequest {
  mode: SeccompMode;
  /** The container's final bounding set: rules that depend on capabilities follow it. */
  capabilities: readonly string[];
  /** For tests: where the default profile lives, Node's arch name, and the kernel release. */
  defaultFile?: string | undefined;
  arch?: string | undefined;
  kernelRelease?: string | undefined;
}

/**
 * The OCI linux.seccomp object for a container, or undefined when it runs
 * unconfined. Docker-style profiles are specialised here, as docker does,
 * to the container's capabilities and to this host's architecture and kernel;
 * OCI-form profiles pass through unchanged.
 */
export function seccompProfile(req: SeccompRequest): OciSeccomp | undefined {
  if (req.mode === 'unconfined') return undefined;
  let profile: Profile;
  if (req.mode === 'default') {
    profile = loadProfile(req.defaultFile ?? DEFAULT_SECCOMP_FILE) ?? fallbackProfile();
  } else {
    const file = req.mode.file;
    const p = loadProfile(file);
    if (!p) throw badSeccomp(file, 'does not exist');
    profile = p;
  }
  const arch = hostArch(req.arch ?? process.arch);
  const kernel = parseKernelRelease(req.kernelRelease ?? kernelRelease());
  return toOci(profile, { caps: new Set(req.capabilities), archNames: arch.names, kernel }, arch.scmp);
}

// ---------------------------------------------------------------------------
// --security-opt

export interface SecurityOpts {
  noNewPrivileges: boolean;
  seccomp: SeccompMode;
  labelDisable: boolean;
  /** Paths (or ALL, or globs) to take out of the masked and read-only lists. */
  unmask: string[];
  /** Extra paths to mask. */
  mask: string[];
  /** Options accepted for compatibility but without effect here (SELinux labels, AppArmor): the caller should warn. */
  ignored: string[];
}

function badOpt(opt: string, why: string): HutchError {
  return new HutchError('BAD_SECURITY_OPT', `--security-opt ${opt}: ${why}`, {
    hint:
      'Valid options: no-new-privileges[=true|false], seccomp=unconfined|FILE, label=disable, ' +
      'apparmor=unconfined, unmask=ALL|PATH[:PATH...], mask=PATH[:PATH...], systempaths=unconfined.',
  });
}

function booleanValue(opt: string, v: string | undefined): boolean {
  if (v === undefined || v === 'true') return true;
  if (v === 'false') return false;
  throw badOpt(opt, `"${v}" is not true or false`);
}

function pathList(opt: string, v: string | undefined, allowAll: boolean): string[] {
  const paths = (v ?? '').split(':').filter((p) => p !== '');
  if (paths.length === 0) throw badOpt(opt, 'no paths given');
  for (const p of paths) {
    if (allowAll && p === 'ALL') continue;
    if (!p.startsWith('/')) throw badOpt(opt, `"${p}" is not an absolute path`);
  }
  return paths;
}

/** Parses --security-opt values in docker's and podman's spellings (KEY=VALUE, or the older KEY:VALUE). */
export function parseSecurityOpts(list: readonly string[]): SecurityOpts {
  const out: SecurityOpts = {
    noNewPrivileges: false,
    seccomp: 'default',
    labelDisable: false,
    unmask: [],
    mask: [],
    ignored: [],
  };
  for (const opt of list) {
    const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(opt.trim());
    const key = m?.[1];
    const value = m?.[2];
    switch (key) {
      case 'no-new-privileges':
        out.noNewPrivileges = booleanValue(opt, value);
        break;
      case 'seccomp':
        if (value === 'unconfined') out.seccomp = 'unconfined';
        // Resolved now: the caller may change directory before reading it.
        else if (value) out.seccomp = { file: resolve(value) };
        else throw badOpt(opt, 'give seccomp=unconfined or seccomp=FILE');
        break;
      case 'label':
        if (value === 'disable') out.labelDisable = true;
        // user:, role:, type:, level:, filetype:, nested: SELinux is not in use here.
        else if (value) out.ignored.push(opt);
        else throw badOpt(opt, 'give label=disable or label=KEY:VALUE');
        break;
      case 'apparmor':
        if (value === 'unconfined') out.ignored.push(opt);
        else throw badOpt(opt, 'hutch does not load AppArmor profiles; only apparmor=unconfined is accepted');
        break;
      case 'systempaths':
        if (value !== 'unconfined') throw badOpt(opt, 'only systempaths=unconfined exists');
        out.unmask.push('ALL');
        break;
      case 'unmask':
        out.unmask.push(...pathList(opt, value, true));
        break;
      case 'mask':
        out.mask.push(...pathList(opt, value, false));
        break;
      default:
        throw badOpt(opt, 'unknown option');
    }
  }
  return out;
}

/**
 * The filter with the container's `calls` (bind, and connect where it may
 * reach the host's loopback) sent to hutch-handoff (network/handoff.ts)
 * through the runtime's seccomp listener: taken out of the rules that allow
 * them, stopped by a rule of their own. An unconfined container gets a
 * filter that allows everything else.
 */
export function withHandoff(
  seccomp: OciSeccomp | undefined,
  listenerPath: string,
  calls: readonly string[],
): OciSeccomp {
  const base = seccomp ?? { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] };
  const allows = (action: string): boolean => action === 'SCMP_ACT_ALLOW' || action === 'SCMP_ACT_LOG';
  const syscalls = (base.syscalls ?? [])
    .map((r) => (allows(r.action) ? { ...r, names: r.names.filter((n) => !calls.includes(n)) } : r))
    .filter((r) => r.names.length > 0);
  return {
    ...base,
    listenerPath,
    syscalls: [...syscalls, { names: [...calls], action: 'SCMP_ACT_NOTIFY' }],
  };
}
