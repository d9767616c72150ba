/**
 * What holds a directory on this machine's disks, as `hutch setup` needs to
 * know it: the filesystem (findmnt), and beneath it what makes it redundant
 * or not: btrfs's own devices and data profile (`btrfs filesystem show` and
 * `df`), an md RAID (/proc/mdstat), a ZFS pool's vdevs (`zpool status`).
 *
 * Every fact comes through a `Probe` (a command's output, a file's text),
 * so tests classify layouts from recorded outputs of other machines.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Probe {
  /** A command's stdout, or undefined when it failed or is not installed. */
  run(cmd: string, args: string[]): string | undefined;
  /** A file's text, or undefined. */
  read(path: string): string | undefined;
}

export const realProbe: Probe = {
  run(cmd, args) {
    const r = spawnSync(cmd, args, {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`, LC_ALL: 'C' },
    });
    return r.status === 0 ? r.stdout : undefined;
  },
  read(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  },
};

export interface Mount {
  target: string;
  /** The device, without btrfs's "[/subvolume]" suffix. */
  device: string;
  /** btrfs: the subvolume mounted there ("/" for the top level). */
  subvol?: string;
  fstype: string;
  options: string[];
  uuid?: string;
}

export type Layout =
  | { kind: 'btrfs'; mount: Mount; uuid: string; devices: number; profile: string }
  | { kind: 'zfs'; mount: Mount; pool: string; dataset: string; vdevs: string[] }
  | { kind: 'ext4' | 'xfs'; mount: Mount; raid?: { md: string; level: string; members: number } }
  | { kind: 'other'; mount: Mount | undefined; why: string };

/** The filesystem holding `path` (it need not exist yet: the nearest existing parent counts). */
export function mountOf(path: string, probe: Probe): Mount | undefined {
  let p = path;
  for (;;) {
    const out = probe.run('findmnt', ['-J', '-T', p, '-o', 'TARGET,SOURCE,FSTYPE,OPTIONS,UUID']);
    if (out) {
      const fs = (JSON.parse(out) as { filesystems?: Record<string, string | null>[] }).filesystems?.[0];
      if (!fs) return undefined;
      const source = fs.source ?? '';
      const m = /^(.*?)(?:\[(.*)\])?$/.exec(source)!;
      return {
        target: fs.target ?? '',
        device: m[1]!,
        ...(m[2] !== undefined ? { subvol: m[2] } : {}),
        fstype: fs.fstype ?? '',
        options: (fs.options ?? '').split(','),
        ...(fs.uuid ? { uuid: fs.uuid } : {}),
      };
    }
    if (p === '/' || p === '') return undefined;
    p = p.slice(0, p.lastIndexOf('/')) || '/';
  }
}

/** md device → RAID level and member count, from /proc/mdstat ("md0 : active raid1 sdb1[1] sda1[0]"). */
export function mdRaid(
  device: string,
  mdstat: string | undefined,
): { level: string; members: number } | undefined {
  const name = device.replace(/^\/dev\//, '').replace(/^md\//, '');
  for (const line of (mdstat ?? '').split('\n')) {
    const m = /^(md\S*)\s*:\s*active\s+(?:\([^)]*\)\s+)?(raid\d+|linear)\s+(.*)$/.exec(line);
    if (m && m[1] === name) return { level: m[2]!, members: m[3]!.trim().split(/\s+/).length };
  }
  return undefined;
}

/** A pool's top-level vdev kinds from `zpool status`: mirror, raidz1..3, or disk for a plain device. */
export function zpoolVdevs(status: string | undefined, pool: string): string[] {
  const lines = (status ?? '').split('\n');
  const start = lines.findIndex((l) =>
    new RegExp(`^\\t${pool.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s`).test(l),
  );
  if (start < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    const m = /^\t {2}(\S+)/.exec(l);
    if (!m) {
      if (/^\t\S/.test(l) || l.trim() === '') break; // logs, cache, spares, or the end
      continue;
    }
    const kind = /^(mirror|raidz\d?|draid\d?)/.exec(m[1]!)?.[1];
    out.push(kind === 'raidz' ? 'raidz1' : (kind ?? 'disk'));
  }
  return out;
}

/** What holds `path`, and what hutch setup can do with it. */
export function layoutOf(path: string, probe: Probe): Layout {
  const mount = mountOf(path, probe);
  if (!mount) return { kind: 'other', mount, why: `findmnt cannot tell which filesystem holds ${path}` };
  switch (mount.fstype) {
    case 'btrfs': {
      const show = probe.run('btrfs', ['filesystem', 'show', mount.target]) ?? '';
      const uuid = /uuid: ([0-9a-f-]{36})/.exec(show)?.[1] ?? mount.uuid;
      if (!uuid)
        return { kind: 'other', mount, why: `the btrfs at ${mount.target} has no UUID to name it by` };
      const devices = Number(/Total devices (\d+)/.exec(show)?.[1] ?? '1');
      const df = probe.run('btrfs', ['filesystem', 'df', mount.target]) ?? '';
      const profile = /^Data, (\w+):/m.exec(df)?.[1]?.toLowerCase() ?? 'single';
      return { kind: 'btrfs', mount, uuid, devices, profile };
    }
    case 'zfs': {
      const dataset = mount.device;
      const pool = dataset.split('/')[0]!;
      return {
        kind: 'zfs',
        mount,
        pool,
        dataset,
        vdevs: zpoolVdevs(probe.run('zpool', ['status', pool]), pool),
      };
    }
    case 'ext4':
    case 'xfs': {
      const raid = /^\/dev\/md/.test(mount.device)
        ? mdRaid(mount.device, probe.read('/proc/mdstat'))
        : undefined;
      return {
        kind: mount.fstype,
        mount,
        ...(raid ? { raid: { md: mount.device, ...raid } } : {}),
      };
    }
    default:
      return {
        kind: 'other',
        mount,
        why: `${path} is on ${mount.fstype} (${mount.device}), which hutch does not prepare: rootless overlay needs a local ext4, xfs or btrfs`,
      };
  }
}

/** One line a person reads: "btrfs raid1 over 2 devices (UUID ...)", "ext4 on md0 (raid1, 2 members)". */
export function describeLayout(l: Layout): string {
  switch (l.kind) {
    case 'btrfs':
      return `btrfs ${l.profile}${l.devices > 1 ? ` over ${l.devices} devices` : ''} (UUID ${l.uuid})`;
    case 'zfs':
      return `ZFS dataset ${l.dataset} in pool ${l.pool} (${l.vdevs.length > 0 ? l.vdevs.join(' + ') : 'vdevs unknown'})`;
    case 'ext4':
    case 'xfs':
      return `${l.kind} on ${l.mount.device}${l.raid ? ` (${l.raid.level}, ${l.raid.members} members)` : ''}`;
    default:
      return l.why;
  }
}
