/**
 * `hutch system df`: docker's four rows (Images, Containers, Local
 * Volumes, Build Cache) with its counting rules, and per item with -v;
 * then what the store's filesystem adds where it can say it (shared bytes
 * on btrfs, compression on btrfs as root and on ZFS: ../storage/fs-usage.ts).
 *
 * Images count each layer once, however many images share it; an image
 * is active while any container (running or not) was made from it, as
 * docker counts; reclaimable are the layers no active image has. A
 * container's size is its writable layer; reclaimable are the stopped
 * ones'. A volume is active while any container mounts it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openContainerReader } from './containers/open-light.ts';
import type { ContainerReader } from './containers/open-light.ts';
import { views } from './containers/list.ts';
import { duSize } from './containers/size.ts';
import type { Context } from './context.ts';
import { openImageStore } from './images-store.ts';
import { openVolumes } from './volumes.ts';
import type { ImageRecord } from '../image/store/db.ts';
import type { ContainerRecord, ContainerState } from '../runtime/containers/types.ts';
import type { Compression, SharedUsage, ZfsUsage } from '../storage/fs-usage.ts';
import { btrfsCompression, btrfsSharedUsage, zfsUsage } from '../storage/fs-usage.ts';

export interface DfImage {
  record: ImageRecord;
  size: number;
  /** Bytes of layers another image has too. */
  shared: number;
  containers: number;
}

export interface DfContainer {
  record: ContainerRecord;
  size: number;
  running: boolean;
  /** As observed now, not as last written (a container said to run may have ended). */
  state: ContainerState;
}

export interface DfVolume {
  name: string;
  size: number;
  links: number;
}

export interface DfTotals {
  type: 'Images' | 'Containers' | 'Local Volumes' | 'Build Cache';
  total: number;
  active: number;
  size: number;
  reclaimable: number;
}

export interface FilesystemReport {
  driver: string;
  path: string;
  shared?: SharedUsage;
  compression?: Compression;
  zfs?: ZfsUsage;
  /** Why a figure is missing, for users who expected it. */
  notes: string[];
}

export interface DiskUsage {
  images: DfImage[];
  containers: DfContainer[];
  volumes: DfVolume[];
  totals: DfTotals[];
  filesystem: FilesystemReport | undefined;
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** The report of the store's filesystem, or undefined where it has nothing to add (overlay on ext4, vfs, ...). */
export function filesystemReport(
  driver: string,
  path: string,
  dataset?: string,
): FilesystemReport | undefined {
  if (driver === 'btrfs') {
    const report: FilesystemReport = { driver, path, notes: [] };
    const shared = btrfsSharedUsage(path);
    if (shared) report.shared = shared;
    else report.notes.push('btrfs filesystem du failed: shared bytes unknown');
    const compression = btrfsCompression(path);
    if (compression) report.compression = compression;
    else
      report.notes.push(
        'compression ratio needs compsize (Debian: btrfs-compsize) and root (it reads the extent tree)',
      );
    return report;
  }
  if (dataset !== undefined) {
    const zfs = zfsUsage(dataset);
    return zfs ? { driver, path, zfs, notes: [] } : { driver, path, notes: [`zfs get on ${dataset} failed`] };
  }
  return undefined;
}

function syncFilesystem(path: string): void {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  spawnSync('sync', ['-f', path], { stdio: 'ignore', timeout: 60_000 });
}

/**
 * A container's writable layer. On btrfs its root is a snapshot holding
 * the image's whole tree, so a walk would count the image again: the
 * bytes only it holds (exclusive extents) are what it wrote.
 */
function ownSize(c: ContainerReader, rec: ContainerRecord): number {
  if (rec.driver !== 'btrfs') return duSize(c, rec);
  const root = join(c.ctx.paths.root, 'storage', 'btrfs', 'containers', rec.id, 'rootfs');
  if (!existsSync(root)) return 0;
  return btrfsSharedUsage(root)?.exclusive ?? duSize(c, rec);
}

export function diskUsage(ctx: Context): DiskUsage {
  const c = openContainerReader(ctx);
  const store = openImageStore(ctx);
  const db = store.db.read();
  const layerSize = new Map(db.layers.map((l) => [l.id, l.size]));
  const list = views(c);
  // btrfs reports extents as allocated: data still in the page cache would count nothing yet.
  if (store.driver.name === 'btrfs') syncFilesystem(ctx.paths.root);

  const usersOf = new Map<string, number>();
  for (const v of list) usersOf.set(v.rec.config.imageId, (usersOf.get(v.rec.config.imageId) ?? 0) + 1);
  const imagesOfLayer = new Map<string, number>();
  for (const im of db.images)
    for (const l of new Set(im.layers)) imagesOfLayer.set(l, (imagesOfLayer.get(l) ?? 0) + 1);
  const images: DfImage[] = db.images.map((im) => {
    const layers = [...new Set(im.layers)];
    return {
      record: im,
      size: sum(layers.map((l) => layerSize.get(l) ?? 0)),
      shared: sum(layers.filter((l) => (imagesOfLayer.get(l) ?? 0) > 1).map((l) => layerSize.get(l) ?? 0)),
      containers: usersOf.get(im.id) ?? 0,
    };
  });
  const activeLayers = new Set(images.filter((i) => i.containers > 0).flatMap((i) => i.record.layers));
  const allLayers = [...imagesOfLayer.keys()];

  const containers: DfContainer[] = list.map((v) => ({
    record: v.rec,
    size: ownSize(c, v.rec),
    running: v.state.status === 'running' || v.state.status === 'paused',
    state: v.state,
  }));

  const vols = openVolumes(ctx);
  const volumes: DfVolume[] = vols.list().map((v) => {
    let size = 0;
    try {
      size = vols.diskUsage(v.name);
    } catch {
      // A volume whose content is unreadable counts nothing; system check reports it.
    }
    return {
      name: v.name,
      size,
      links: list.filter((x) => x.rec.hostConfig.mounts.some((m) => m.type === 'volume' && m.name === v.name))
        .length,
    };
  });

  const totals: DfTotals[] = [
    {
      type: 'Images',
      total: images.length,
      active: images.filter((i) => i.containers > 0).length,
      size: sum(allLayers.map((l) => layerSize.get(l) ?? 0)),
      reclaimable: sum(allLayers.filter((l) => !activeLayers.has(l)).map((l) => layerSize.get(l) ?? 0)),
    },
    {
      type: 'Containers',
      total: containers.length,
      active: containers.filter((x) => x.running).length,
      size: sum(containers.map((x) => x.size)),
      reclaimable: sum(containers.filter((x) => !x.running).map((x) => x.size)),
    },
    {
      type: 'Local Volumes',
      total: volumes.length,
      active: volumes.filter((v) => v.links > 0).length,
      size: sum(volumes.map((v) => v.size)),
      reclaimable: sum(volumes.filter((v) => v.links === 0).map((v) => v.size)),
    },
    // hutch builds no images yet, so it keeps no build cache.
    { type: 'Build Cache', total: 0, active: 0, size: 0, reclaimable: 0 },
  ];
  const dataset = (store.driver as { dataset?: unknown }).dataset;
  return {
    images,
    containers,
    volumes,
    totals,
    filesystem: filesystemReport(
      store.driver.name,
      ctx.paths.root,
      typeof dataset === 'string' ? dataset : undefined,
    ),
  };
}
