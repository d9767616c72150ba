/**
 * What `system reset` must let the storage driver undo before the store's
 * files go: the zfs driver's datasets live in a pool, not in the store's
 * directory, and their mounts would make a recursive delete empty them
 * file by file and then fail.
 */
import { readFileSync } from 'node:fs';
import { ZfsDriver } from '../storage/drivers/zfs.ts';
import { recordedDataset } from '../storage/drivers/zfs-probe.ts';
import { storeMetaPath } from '../store/store.ts';
import type { Context } from './context.ts';

export function releaseDriverStorage(ctx: Context): void {
  let driver: unknown;
  try {
    driver = (JSON.parse(readFileSync(storeMetaPath(ctx.paths.root), 'utf8')) as { driver?: unknown }).driver;
  } catch {
    return;
  }
  if (driver !== 'zfs') return;
  const dataset = recordedDataset(ctx.paths.root);
  if (dataset !== undefined) new ZfsDriver(ctx.paths.root, dataset).destroyAll();
}
