/**
 * Whether the zfs driver can work, and which parent dataset it uses.
 *
 * The driver is chosen from configuration (`[storage] zfs_dataset`, or
 * `--storage-driver zfs`), never from the store's filesystem type: a
 * zfs-fuse mount reports FUSE's statfs type, and the store directory need
 * not be on ZFS at all (each layer is mounted there from the pool).
 *
 * A store remembers its dataset (storage/zfs/dataset): its layers live
 * there, so a later change of the setting must be refused, not followed.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HutchError } from '../../util/errors.ts';
import { writeFileAtomic } from '../../util/fs-atomic.ts';
import { datasetExists, zfsTool } from './zfs-tool.ts';

export type ZfsProbe = { ok: true; dataset: string } | { ok: false; reason: string; hint: string };

export interface ZfsFacts {
  rootless: boolean;
  /** `[storage] zfs_dataset` (or HUTCH_ZFS_DATASET). */
  dataset: string | undefined;
  toolInstalled: boolean;
  exists: (dataset: string) => boolean;
}

/** The command that makes a parent dataset, and what zfs-fuse cannot take of it. */
export function createHint(dataset: string): string {
  return (
    `As root: zfs create -o compression=lz4 -o xattr=sa -o acltype=posixacl ${dataset}. ` +
    `On zfs-fuse (pool version 23) lz4, xattr=sa and acltype do not exist: zfs create -o compression=on ${dataset}.`
  );
}

export function judgeZfs(f: ZfsFacts): ZfsProbe {
  if (f.rootless) {
    return {
      ok: false,
      reason: 'ZFS datasets can be created and mounted only by root, so the zfs driver is rootful only',
      hint: 'Rootless, leave the driver to hutch (overlay on OpenZFS 2.2 or later, else fuse-overlayfs), or run hutch as root.',
    };
  }
  if (f.dataset === undefined) {
    return {
      ok: false,
      reason: 'no parent dataset is configured for the zfs driver',
      hint: `Set zfs_dataset = "POOL/hutch" under [storage] in hutch.toml. ${createHint('POOL/hutch')}`,
    };
  }
  if (!f.toolInstalled) {
    return {
      ok: false,
      reason: 'the zfs tool is not installed',
      hint: 'Install OpenZFS (Debian: apt-get install zfsutils-linux) or zfs-fuse, and start its daemon.',
    };
  }
  if (!f.exists(f.dataset)) {
    return {
      ok: false,
      reason: `the dataset ${f.dataset} does not exist (or its pool is not imported, or the zfs-fuse daemon is not running)`,
      hint: createHint(f.dataset),
    };
  }
  return { ok: true, dataset: f.dataset };
}

export function probeZfs(dataset: string | undefined, rootless: boolean): ZfsProbe {
  return judgeZfs({
    rootless,
    dataset,
    toolInstalled: zfsTool() !== undefined,
    exists: (ds) => datasetExists(ds),
  });
}

function recordFile(storeRoot: string): string {
  return join(storeRoot, 'storage', 'zfs', 'dataset');
}

export function recordedDataset(storeRoot: string): string | undefined {
  try {
    return readFileSync(recordFile(storeRoot), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The dataset a zfs store uses: the one it recorded, else the configured
 * one (recorded now). A configured one that differs is refused.
 */
export function storeDataset(storeRoot: string, configured: string | undefined, rootless: boolean): string {
  const recorded = recordedDataset(storeRoot);
  if (recorded !== undefined && configured !== undefined && configured !== recorded) {
    throw new HutchError(
      'ZFS_DATASET_MISMATCH',
      `the store at ${storeRoot} keeps its layers in the dataset ${recorded}, not ${configured}`,
      {
        hint: `Set zfs_dataset = "${recorded}" again, or use another --root; hutch system reset starts over.`,
      },
    );
  }
  const probe = probeZfs(recorded ?? configured, rootless);
  if (!probe.ok) {
    throw new HutchError('ZFS_UNUSABLE', `the zfs storage driver cannot work here: ${probe.reason}`, {
      hint: probe.hint,
    });
  }
  if (recorded === undefined) {
    mkdirSync(dirname(recordFile(storeRoot)), { recursive: true, mode: 0o700 });
    writeFileAtomic(recordFile(storeRoot), `${probe.dataset}\n`);
  }
  return probe.dataset;
}
