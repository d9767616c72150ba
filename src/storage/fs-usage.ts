/**
 * What copy-on-write filesystems can say about a store's disk use that a
 * walk of its files cannot: how much of it is shared between layers,
 * container roots and snapshots, and how well it compresses. Each answer
 * is optional: hutch reports what the filesystem and the caller's
 * privileges allow, and omits the rest.
 *
 * - btrfs, shared bytes: `btrfs filesystem du -s` walks the files' extents
 *   with FIEMAP, which any user may (qgroups would be exact, but a user
 *   cannot read them).
 * - btrfs, compression: `compsize` (Debian: btrfs-compsize) reads the
 *   extent tree with BTRFS_IOC_TREE_SEARCH_V2, which needs CAP_SYS_ADMIN:
 *   rootful only, and only where it is installed.
 * - ZFS: the dataset's own `compressratio`, `used` and `logicalused`.
 */
import { which } from '../util/which.ts';

function run(tool: string, args: string[]): string | undefined {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync(tool, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 120_000,
  });
  return r.status === 0 ? r.stdout : undefined;
}

function findTool(name: string): string | undefined {
  return which(name) ?? [`/usr/sbin/${name}`, `/sbin/${name}`].find((p) => which(p) !== undefined);
}

export interface SharedUsage {
  /** Bytes the files reference, each file counted whole. */
  referenced: number;
  /** Bytes no other file or snapshot shares. */
  exclusive: number;
  /** Bytes shared between files of the tree (or with snapshots), counted once. */
  shared: number;
}

/** `btrfs filesystem du -s --raw PATH`: its one line is Total, Exclusive, Set shared, Filename. */
export function parseBtrfsDu(text: string): SharedUsage | undefined {
  const line = text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f.length >= 4 && /^\d+$/.test(f[0]!));
  if (!line) return undefined;
  return { referenced: Number(line[0]), exclusive: Number(line[1]), shared: Number(line[2]) };
}

export function btrfsSharedUsage(path: string): SharedUsage | undefined {
  const tool = findTool('btrfs');
  const text = tool ? run(tool, ['filesystem', 'du', '-s', '--raw', path]) : undefined;
  return text === undefined ? undefined : parseBtrfsDu(text);
}

export interface Compression {
  /** Bytes on disk, after compression. */
  disk: number;
  /** The same data uncompressed. */
  uncompressed: number;
  /** uncompressed / disk, as ZFS's compressratio: 1 means nothing saved. */
  ratio: number;
  source: 'compsize' | 'zfs';
}

/** `compsize -b`: the TOTAL row is Perc, Disk Usage, Uncompressed, Referenced. */
export function parseCompsize(text: string): Compression | undefined {
  const row = text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[0] === 'TOTAL' && f.length >= 5);
  if (!row) return undefined;
  const disk = Number(row[2]);
  const uncompressed = Number(row[3]);
  if (!Number.isFinite(disk) || !Number.isFinite(uncompressed)) return undefined;
  return { disk, uncompressed, ratio: disk > 0 ? uncompressed / disk : 1, source: 'compsize' };
}

export function btrfsCompression(path: string): Compression | undefined {
  const tool = findTool('compsize');
  const text = tool ? run(tool, ['-b', path]) : undefined;
  return text === undefined ? undefined : parseCompsize(text);
}

export interface ZfsUsage {
  dataset: string;
  /** Bytes the dataset and its descendants take on disk. */
  used: number;
  /** The same before compression. */
  logicalUsed: number;
  /** ZFS's own compressratio (1.00 = none). */
  ratio: number;
}

/** `zfs get -Hp -o property,value compressratio,used,logicalused DATASET`, tab-separated. */
export function parseZfsGet(dataset: string, text: string): ZfsUsage | undefined {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [prop, value] = line.split('\t');
    if (prop && value !== undefined) values.set(prop, value.trim());
  }
  const used = Number(values.get('used'));
  const logicalUsed = Number(values.get('logicalused'));
  // -p prints the ratio bare on newer OpenZFS and with an "x" on older ones.
  const ratio = Number.parseFloat(values.get('compressratio') ?? '');
  if (!Number.isFinite(used) || !Number.isFinite(ratio)) return undefined;
  // Pools too old for logicalused (zfs-fuse): used times the ratio is what it would say.
  return {
    dataset,
    used,
    logicalUsed: Number.isFinite(logicalUsed) ? logicalUsed : Math.round(used * ratio),
    ratio,
  };
}

/** For the zfs driver's parent dataset (or any dataset): undefined where zfs is absent or the dataset unknown. */
export function zfsUsage(dataset: string): ZfsUsage | undefined {
  const tool = findTool('zfs');
  if (!tool) return undefined;
  const get = (props: string): string | undefined =>
    run(tool, ['get', '-Hp', '-o', 'property,value', props, dataset]);
  // Old pools (zfs-fuse) refuse the whole request for the one property they lack.
  const text = get('compressratio,used,logicalused') ?? get('compressratio,used');
  return text === undefined ? undefined : parseZfsGet(dataset, text);
}
