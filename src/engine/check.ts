/**
 * `hutch system check`: finds what a crash or a full disk could have left
 * inconsistent. Each layer contributes its checks; the store shell checks
 * its own metadata and leftover temporary files.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { STORE_SNAPSHOTS_DIR } from '../runtime/store-snapshots.ts';
import { storeMetaPath } from '../store/store.ts';
import { TEMP_MARK, readIfExists } from '../util/fs-atomic.ts';
import { checkContainers } from './containers/check.ts';
import type { Context } from './context.ts';
import { openStateful } from './context.ts';
import { checkImages } from './image-check.ts';
import { checkStoreSnapshots } from './store-snapshot-check.ts';
import { checkVolumes } from './volume-check.ts';

export interface Finding {
  /** problem: state is inconsistent; garbage: unreferenced leftovers, harmless. */
  severity: 'problem' | 'garbage';
  what: string;
  detail: string;
  repaired: boolean;
}

export interface CheckReport {
  findings: Finding[];
}

export type Checker = (ctx: Context, repair: boolean) => Finding[] | Promise<Finding[]>;

// Containers before temporary files: a leaked mount in a half-removed bundle must go before the bundle can.
const checkers: Checker[] = [
  checkStoreMeta,
  checkImages,
  checkContainers,
  checkVolumes,
  checkStoreSnapshots,
  checkTempFiles,
];

export function addChecker(c: Checker): void {
  checkers.push(c);
}

function checkStoreMeta(ctx: Context): Finding[] {
  const text = readIfExists(storeMetaPath(ctx.paths.root));
  try {
    const meta = JSON.parse(text ?? '') as { format?: unknown };
    if (typeof meta.format === 'number') return [];
  } catch {
    // fall through
  }
  return [{ severity: 'problem', what: 'store.json', detail: 'missing or unreadable', repaired: false }];
}

/** Temporary files of killed writers: harmless, removed with --repair. */
function checkTempFiles(ctx: Context, repair: boolean): Finding[] {
  const found: Finding[] = [];
  const volumes = join(ctx.paths.root, 'volumes') + '/';
  const snapshots = join(ctx.paths.root, STORE_SNAPSHOTS_DIR) + '/';
  const walk = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      // Staged layers are reported by the image checker, and volumes' leftovers (which may
      // hold read-only subvolumes) by the volume checker, with what they are; store snapshots'
      // by theirs, and a snapshot's copies of the store's files are not the store's own.
      if (p.startsWith(snapshots)) continue;
      if (e.name.startsWith(TEMP_MARK) && !p.includes('/storage/') && !p.startsWith(volumes)) {
        if (repair) rmSync(p, { recursive: true, force: true });
        found.push({ severity: 'garbage', what: 'temporary file', detail: p, repaired: repair });
      } else if (e.isDirectory() && depth < 3) {
        walk(p, depth + 1);
      }
    }
  };
  walk(ctx.paths.root, 0);
  return found;
}

export async function systemCheck(ctx: Context, opts: { repair: boolean }): Promise<CheckReport> {
  openStateful(ctx);
  const findings: Finding[] = [];
  for (const c of checkers) findings.push(...(await c(ctx, opts.repair)));
  return { findings };
}
