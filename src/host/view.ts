/**
 * HostView: the one door through which `hutch doctor` and the host probes
 * read facts about the machine. Checks written against it run unchanged on
 * the live host (realHost) and on a recorded host state (recordedHost, the
 * test fixtures under test/fixtures/hosts/), so every branch of a check can
 * be exercised without the machine that has that state.
 *
 * Paths are absolute, as on the host ('/proc/sys/user/max_user_namespaces').
 * Nothing here throws for a missing file or a failing command: absence is a
 * fact the checks reason about.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, statSync, statfsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { HutchError } from '../util/errors.ts';
import { kernelRelease } from './kernel.ts';

export interface StatInfo {
  /** st_mode: file type bits and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  isDir: boolean;
  isFile: boolean;
  isCharDevice: boolean;
}

export interface RunResult {
  /** Exit status; 127 when the command could not be started. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface HostView {
  readFile(path: string): string | undefined;
  exists(path: string): boolean;
  /** Follows symlinks, as stat(2) does. */
  stat(path: string): StatInfo | undefined;
  /** Entry names, sorted; undefined when `path` is not a readable directory. */
  listDir(path: string): string[] | undefined;
  /** The absolute path of an executable `cmd`, searched on PATH and then the sbin directories. */
  which(cmd: string): string | undefined;
  run(cmd: string, args: readonly string[]): RunResult;
  /** The name of the filesystem `path` lives on ('ext4', 'zfs', ...), or undefined if it cannot be told. */
  statfsType(path: string): string | undefined;
  kernelRelease(): string;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

function statInfo(mode: number, uid: number, gid: number): StatInfo {
  const type = mode & S_IFMT;
  return {
    mode,
    uid,
    gid,
    isDir: type === S_IFDIR,
    isFile: type === S_IFREG,
    isCharDevice: type === S_IFCHR,
  };
}

/**
 * statfs(2) f_type values (linux/magic.h) of the filesystems a store may sit
 * on. ext2, ext3 and ext4 share one magic number; it is reported as 'ext4'.
 */
const FS_MAGIC: ReadonlyMap<number, string> = new Map([
  [0xef53, 'ext4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x2fc12fc1, 'zfs'],
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
  [0x6969, 'nfs'],
  [0x794c7630, 'overlay'],
  [0x65735546, 'fuse'],
  [0xf2f52010, 'f2fs'],
  [0xca451a4e, 'bcachefs'],
  [0x52654973, 'reiserfs'],
  [0x3153464a, 'jfs'],
  [0x7461636f, 'ocfs2'],
  [0x01161970, 'gfs2'],
  [0x47504653, 'gpfs'],
  [0x0bd00bd0, 'lustre'],
  [0xff534d42, 'cifs'],
  [0xfe534d42, 'smb2'],
  [0x01021997, '9p'],
  [0x6b414653, 'afs'],
  [0x0000f15f, 'ecryptfs'],
  [0x73717368, 'squashfs'],
  [0x2011bab0, 'exfat'],
  [0x00004d44, 'vfat'],
  [0x5346544e, 'ntfs'],
  [0x61756673, 'aufs'],
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x63677270, 'cgroup2'],
  [0x0027e0eb, 'cgroup'],
]);

export function fsTypeName(magic: number): string {
  const m = magic >>> 0;
  return FS_MAGIC.get(m) ?? `unknown (0x${m.toString(16)})`;
}

/** Where executables live beyond PATH: a user's PATH often lacks the sbin directories (runc, getcap). */
export const EXTRA_BIN_DIRS: readonly string[] = [
  '/usr/local/sbin',
  '/usr/local/bin',
  '/usr/sbin',
  '/usr/bin',
  '/sbin',
  '/bin',
];

function searchDirs(pathVar: string | undefined): string[] {
  const dirs = (pathVar ?? '').split(':').filter((d) => d.startsWith('/'));
  for (const d of EXTRA_BIN_DIRS) if (!dirs.includes(d)) dirs.push(d);
  return dirs;
}

function parseIdMap(text: string): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length === 3 && f.every((n) => Number.isSafeInteger(n))) out.push(f as [number, number, number]);
  }
  return out;
}

/** Translates an id seen inside a user namespace to the host's id; unmapped ids become 0 (see realHost). */
function outside(map: Array<[number, number, number]>, id: number): number {
  for (const [inside, out, count] of map) if (id >= inside && id < inside + count) return out + (id - inside);
  return 0;
}

export interface RealHostOptions {
  /** PATH to search; defaults to process.env.PATH. */
  path?: string | undefined;
  /**
   * Report file owners as the host sees them even when this process runs
   * inside hutch's user namespace (the launcher joins it before Node starts).
   * Ids the namespace does not map show up as the overflow id there; they
   * are reported as 0, since the files the doctor looks at that are not the
   * user's own are root's (/usr/bin/newuidmap, /dev/fuse). Default true.
   */
  hostIds?: boolean | undefined;
}

/** The live machine. Every method does its I/O when called, never before. */
export function realHost(options: RealHostOptions = {}): HostView {
  let maps: { uid: Array<[number, number, number]>; gid: Array<[number, number, number]> } | null | undefined;
  const idMaps = (): typeof maps => {
    if (maps !== undefined) return maps;
    maps = null;
    if (options.hostIds === false) return maps;
    try {
      const uid = readFileSync('/proc/self/uid_map', 'utf8');
      const gid = readFileSync('/proc/self/gid_map', 'utf8');
      const identity = /^\s*0\s+0\s+4294967295\s*$/;
      if (!identity.test(uid) || !identity.test(gid)) maps = { uid: parseIdMap(uid), gid: parseIdMap(gid) };
    } catch {
      // No /proc: ids are taken as they come.
    }
    return maps;
  };
  const which = (cmd: string): string | undefined => {
    const candidates = cmd.includes('/')
      ? [cmd]
      : searchDirs(options.path ?? process.env.PATH).map((d) => join(d, cmd));
    for (const c of candidates) {
      try {
        if (!statSync(c).isFile()) continue;
        accessSync(c, constants.X_OK);
        return c;
      } catch {
        // Not here; keep looking.
      }
    }
    return undefined;
  };
  return {
    readFile(path) {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
    },
    exists: (path) => existsSync(path),
    stat(path) {
      try {
        const st = statSync(path);
        const m = idMaps();
        return m
          ? statInfo(st.mode, outside(m.uid, st.uid), outside(m.gid, st.gid))
          : statInfo(st.mode, st.uid, st.gid);
      } catch {
        return undefined;
      }
    },
    listDir(path) {
      try {
        return readdirSync(path).sort();
      } catch {
        return undefined;
      }
    },
    which,
    run(cmd, args) {
      const exe = which(cmd);
      if (!exe) return { code: 127, stdout: '', stderr: `${cmd}: command not found` };
      const r = spawnSync(exe, args, {
        encoding: 'utf8',
        timeout: 10_000,
        env: { ...process.env, LC_ALL: 'C' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      if (r.error) return { code: 127, stdout: r.stdout ?? '', stderr: `${cmd}: ${r.error.message}` };
      return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
    },
    statfsType(path) {
      try {
        return fsTypeName(statfsSync(path).type);
      } catch {
        return undefined;
      }
    },
    kernelRelease: () => kernelRelease(),
  };
}

/** A stat entry in facts.json: mode as an octal string ("020666", "0104755") or number. */
export interface StatSpec {
  mode?: string | number;
  uid?: number;
  gid?: number;
}

/** A whole host state in memory: what recordedHost reads from disk, and what unit tests build inline. */
export interface HostSpec {
  /** File contents by absolute path. */
  files?: Record<string, string>;
  /**
   * Stat results by absolute path. A path named here exists even without
   * contents (binaries, device nodes, directories); for a path that also has
   * contents the given fields override the defaults (root-owned, 0644).
   */
  stat?: Record<string, StatSpec>;
  /** Mount point → filesystem name; the longest mount point that contains a path wins. */
  statfs?: Record<string, string>;
  /** "cmd arg1 arg2" → result. Commands not listed exit 127. */
  commands?: Record<string, Partial<RunResult>>;
  kernelRelease?: string;
  /** Directories `which` searches, in order; default EXTRA_BIN_DIRS. */
  path?: string[];
}

function modeOf(m: string | number | undefined): number | undefined {
  if (m === undefined) return undefined;
  if (typeof m === 'number') return m;
  const n = Number.parseInt(m, 8);
  return Number.isNaN(n) ? undefined : n;
}

function normal(path: string): string {
  if (!path.startsWith('/')) throw new HutchError('HOST_PATH', `host paths are absolute, not "${path}"`);
  const p = posix.normalize(path);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

function commandKey(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].join(' ');
}

function fsAt(table: Record<string, string> | undefined, path: string): string | undefined {
  if (!table) return undefined;
  let best: string | undefined;
  for (const mp of Object.keys(table)) {
    const m = normal(mp);
    const inside = m === '/' || path === m || path.startsWith(`${m}/`);
    if (inside && (best === undefined || m.length > best.length)) best = m;
  }
  return best === undefined ? undefined : table[best];
}

interface Tree {
  read(path: string): string | undefined;
  stat(path: string): StatInfo | undefined;
  list(path: string): string[] | undefined;
}

/** Builds a HostView over a file tree plus the stat/statfs/command tables of a spec. */
function layeredHost(tree: Tree, spec: HostSpec): HostView {
  const stats = new Map(Object.entries(spec.stat ?? {}).map(([p, s]) => [normal(p), s]));
  const stat = (raw: string): StatInfo | undefined => {
    const path = normal(raw);
    const base = tree.stat(path);
    const over = stats.get(path);
    if (!base && !over) {
      // A directory that only has declared children still exists.
      for (const p of stats.keys())
        if (p.startsWith(path === '/' ? '/' : `${path}/`)) return statInfo(0o040755, 0, 0);
      return undefined;
    }
    // A declared mode without file type bits keeps the recorded file's type (a regular file if none).
    const declared = modeOf(over?.mode);
    const baseMode = base?.mode ?? 0o100644;
    const mode =
      declared === undefined
        ? baseMode
        : (declared & S_IFMT) !== 0
          ? declared
          : (baseMode & S_IFMT) | declared;
    return statInfo(mode, over?.uid ?? base?.uid ?? 0, over?.gid ?? base?.gid ?? 0);
  };
  const which = (cmd: string): string | undefined => {
    const candidates = cmd.includes('/')
      ? [cmd]
      : (spec.path ?? EXTRA_BIN_DIRS).map((d) => posix.join(d, cmd));
    for (const c of candidates) {
      const st = stat(c);
      if (st?.isFile) return c;
    }
    return undefined;
  };
  return {
    readFile: (path) => tree.read(normal(path)),
    exists: (path) => stat(path) !== undefined,
    stat,
    listDir(raw) {
      const path = normal(raw);
      const names = new Set(tree.list(path) ?? []);
      const prefix = path === '/' ? '/' : `${path}/`;
      for (const p of stats.keys()) {
        if (!p.startsWith(prefix)) continue;
        const name = p.slice(prefix.length).split('/')[0];
        if (name) names.add(name);
      }
      if (names.size === 0 && !stat(path)?.isDir) return undefined;
      return [...names].sort();
    },
    which,
    run(cmd, args) {
      const r = spec.commands?.[commandKey(cmd, args)];
      if (!r) return { code: 127, stdout: '', stderr: `${cmd}: not recorded` };
      return { code: r.code ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    statfsType: (path) => fsAt(spec.statfs, normal(path)),
    kernelRelease: () => spec.kernelRelease ?? tree.read('/proc/sys/kernel/osrelease')?.trim() ?? '0.0.0',
  };
}

/** A host held entirely in memory, for tests that need one or two facts changed. */
export function specHost(spec: HostSpec): HostView {
  const files = new Map(Object.entries(spec.files ?? {}).map(([p, c]) => [normal(p), c]));
  return layeredHost(
    {
      read: (path) => files.get(path),
      stat(path) {
        if (files.has(path)) return statInfo(0o100644, 0, 0);
        for (const p of files.keys())
          if (p.startsWith(path === '/' ? '/' : `${path}/`)) return statInfo(0o040755, 0, 0);
        return undefined;
      },
      list(path) {
        const prefix = path === '/' ? '/' : `${path}/`;
        const names = new Set<string>();
        for (const p of files.keys()) {
          if (!p.startsWith(prefix)) continue;
          const name = p.slice(prefix.length).split('/')[0];
          if (name) names.add(name);
        }
        return names.size > 0 ? [...names] : undefined;
      },
    },
    spec,
  );
}

function readJson<T>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new HutchError('HOST_RECORD', `${file} is not valid JSON`, { cause: e });
  }
}

/**
 * A recorded host state: files from DIR/root/<absolute path>, command results
 * from DIR/commands.json ({"cmd args": {code, stdout, stderr}}), and the rest
 * (kernelRelease, statfs, stat, path; see HostSpec) from DIR/facts.json.
 * Recorded files are root-owned 0644 (directories 0755) unless facts.json
 * says otherwise: a checkout cannot carry owners, setuid bits or device nodes.
 */
export function recordedHost(dir: string): HostView {
  const root = join(dir, 'root');
  const facts = readJson<Omit<HostSpec, 'files' | 'commands'>>(join(dir, 'facts.json')) ?? {};
  const commands = readJson<HostSpec['commands']>(join(dir, 'commands.json')) ?? {};
  const onDisk = (path: string): string => join(root, path);
  return layeredHost(
    {
      read(path) {
        try {
          return readFileSync(onDisk(path), 'utf8');
        } catch {
          return undefined;
        }
      },
      stat(path) {
        try {
          const st = statSync(onDisk(path));
          return st.isDirectory() ? statInfo(0o040755, 0, 0) : statInfo(0o100644, 0, 0);
        } catch {
          return undefined;
        }
      },
      list(path) {
        try {
          return readdirSync(onDisk(path));
        } catch {
          return undefined;
        }
      },
    },
    { ...facts, commands },
  );
}
