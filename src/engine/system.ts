/**
 * `hutch system migrate` and `hutch system reset`: ways back to a clean
 * state. migrate keeps images and containers and only rebuilds the
 * namespace; reset deletes everything hutch has for the user.
 */
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { stopPause } from '../rootless/namespace.ts';
import { removeTree } from '../runtime/volume-tree.ts';
import { storeMetaPath } from '../store/store.ts';
import { HutchError, errnoCode } from '../util/errors.ts';
import type { Context } from './context.ts';
import { openStateful } from './context.ts';
import { releaseDriverStorage } from './storage-reset.ts';

/** Hooks the container layer registers to stop everything first. */
const stoppers: ((ctx: Context) => Promise<void>)[] = [];

export function onStopAll(fn: (ctx: Context) => Promise<void>): void {
  stoppers.push(fn);
}

async function stopAll(ctx: Context): Promise<void> {
  for (const stop of stoppers) await stop(ctx);
}

export async function systemMigrate(ctx: Context): Promise<{ pauseStopped: boolean }> {
  openStateful(ctx);
  await stopAll(ctx);
  return { pauseStopped: stopPause(ctx.paths) };
}

function emptyDir(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) rmSync(join(dir, n), { recursive: true, force: true });
}

/** Refuses to empty a directory that is not a hutch store: --root may be mistyped. */
function assertIsStore(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  if (names.length > 0 && !existsSync(storeMetaPath(root))) {
    throw new HutchError(
      'NOT_A_STORE',
      `${root} is not a hutch store (it has no store.json); nothing was removed`,
      {
        hint: 'Check --root / HUTCH_ROOT: reset deletes the whole store directory.',
      },
    );
  }
}

export async function systemReset(ctx: Context): Promise<void> {
  assertIsStore(ctx.paths.root);
  // Inside the namespace, so files owned by sub-ids can be deleted.
  openStateful(ctx);
  await stopAll(ctx);
  // First: a zfs store's volumes are mounted datasets, which a recursive delete would empty file by file.
  releaseDriverStorage(ctx);
  // Volume snapshots may be read-only subvolumes, which a plain recursive delete cannot empty.
  removeTree(join(ctx.paths.root, 'volumes'));
  // So may store snapshots' layers, roots and volumes.
  removeTree(join(ctx.paths.root, 'snapshots'));
  for (let attempt = 1; ; attempt++) {
    try {
      // A file made in a directory as it is removed fails the removal (ENOTEMPTY) here too.
      emptyDir(ctx.paths.root);
      rmdirSync(ctx.paths.root);
      break;
    } catch (e) {
      // Gone already; or a mount point of its own (a subvolume or dataset hutch setup made): it stays, empty.
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'EBUSY') break;
      // A command that was ending a container as it stopped (a foreground run --rm) wrote meanwhile: again.
      if (errnoCode(e) !== 'ENOTEMPTY' || attempt === 5) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  stopPause(ctx.paths);
  emptyDir(ctx.paths.runroot);
}
