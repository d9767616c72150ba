/**
 * What `system check` knows of store snapshots (ROOT/snapshots): a
 * rollback a killed command left unfinished (a problem: the store may be
 * half old, half restored), snapshots missing a part they list (a
 * problem: rollback to them would fail), and leftovers of killed snapshot
 * commands (garbage, which may hold read-only subvolumes, so removed with
 * the volume tree's remover, never a plain recursive delete).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROLLBACK_JOURNAL,
  STORE_SNAPSHOTS_DIR,
  STORE_SNAPSHOT_RECORD,
  stagedByLiveProcess,
} from '../runtime/store-snapshots.ts';
import type { StoreSnapshotRecord } from '../runtime/store-snapshots.ts';
import { removeTree } from '../runtime/volume-tree.ts';
import { storeTags } from '../runtime/store-snapshots-zfs.ts';
import { recordedDataset } from '../storage/drivers/zfs-probe.ts';
import { zfs } from '../storage/drivers/zfs-tool.ts';
import { lockFile } from '../sys/lock.ts';
import { TEMP_MARK, readIfExists } from '../util/fs-atomic.ts';
import type { Finding } from './check.ts';
import type { Context } from './context.ts';

function missingParts(dir: string, rec: StoreSnapshotRecord, dataset: string | undefined): string[] {
  const tag = (rec as { tag?: string }).tag;
  if (tag !== undefined) {
    // A zfs store's: one recursive snapshot holds layers, roots and volumes.
    const gone = dataset === undefined || !storeTags(dataset).includes(tag);
    return [...(gone ? [`the ZFS snapshot @${tag}`] : []), 'images', 'containers'].filter(
      (p) => p.startsWith('the ZFS') || !existsSync(join(dir, p)),
    );
  }
  const parts = [
    ...rec.layers.map((id) => join('layers', id)),
    ...rec.roots.map((id) => join('roots', id)),
    ...rec.volumes.map((n) => join('volumes', n, '_data')),
    'images',
    'containers',
  ];
  return parts.filter((p) => !existsSync(join(dir, p)));
}

export function checkStoreSnapshots(ctx: Context, repair: boolean): Finding[] {
  const dir = join(ctx.paths.root, STORE_SNAPSHOTS_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const found: Finding[] = [];
  const journal = readIfExists(join(dir, ROLLBACK_JOURNAL));
  if (journal !== undefined) {
    let name = '?';
    try {
      name = String((JSON.parse(journal) as { name?: unknown }).name);
    } catch {
      // the name stays unknown
    }
    found.push({
      severity: 'problem',
      what: 'store rollback',
      detail: `a rollback to snapshot ${name} did not finish; finish it with: hutch system rollback -f ${name}`,
      repaired: false,
    });
  }
  const dataset = recordedDataset(ctx.paths.root);
  if (dataset !== undefined) found.push(...checkTags(dir, names, dataset, repair));
  for (const n of names) {
    const p = join(dir, n);
    if (n.startsWith(TEMP_MARK)) {
      // An unfinished rollback's work holds what its next run needs (volumes' own snapshots).
      if (stagedByLiveProcess(n) || (journal !== undefined && n === `${TEMP_MARK}rollback`)) continue;
      if (repair) removeTree(p);
      found.push({ severity: 'garbage', what: 'store snapshot leftover', detail: p, repaired: repair });
      continue;
    }
    if (n.startsWith('.')) continue; // the lock and the journal
    const text = readIfExists(join(p, STORE_SNAPSHOT_RECORD));
    if (text === undefined) {
      if (repair) removeTree(p);
      found.push({ severity: 'garbage', what: 'store snapshot without record', detail: p, repaired: repair });
      continue;
    }
    const missing = missingParts(p, JSON.parse(text) as StoreSnapshotRecord, recordedDataset(ctx.paths.root));
    if (missing.length > 0) {
      found.push({
        severity: 'problem',
        what: `store snapshot ${n}`,
        detail: `missing ${missing.join(', ')}; remove it with: hutch system snapshot rm ${n}`,
        repaired: false,
      });
    }
  }
  return found;
}

/**
 * A zfs store's recursive `@st-*` snapshots that no record names: a take
 * killed before its record, a removal killed after it. Garbage, destroyed
 * with --repair (what only they held goes at the next command's sweep);
 * skipped while a snapshot command holds the lock, since a take in
 * progress has its tag before its record.
 */
function checkTags(dir: string, names: string[], dataset: string, repair: boolean): Finding[] {
  const lock = lockFile(join(dir, '.lock'), { wait: false });
  if (!lock) return [];
  try {
    const named = new Set<string>();
    for (const n of names) {
      if (n.startsWith('.')) continue; // the lock, the journal, leftovers
      const text = readIfExists(join(dir, n, STORE_SNAPSHOT_RECORD));
      try {
        const tag = text === undefined ? undefined : (JSON.parse(text) as { tag?: unknown }).tag;
        if (typeof tag === 'string') named.add(tag);
      } catch {
        // An unreadable record is reported below.
      }
    }
    return storeTags(dataset)
      .filter((t) => !named.has(t))
      .map((t) => {
        if (repair) zfs(['destroy', '-r', `${dataset}@${t}`]);
        return {
          severity: 'garbage' as const,
          what: 'store snapshot leftover',
          detail: `${dataset}@${t}: a ZFS snapshot no store snapshot names`,
          repaired: repair,
        };
      });
  } finally {
    lock.release();
  }
}
