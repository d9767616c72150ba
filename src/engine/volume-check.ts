/**
 * `system check` for the volume store: leftovers of killed snapshot,
 * rollback, clone and receive commands (`.tmp-*`, which may hold read-only
 * subvolumes a plain delete cannot remove), snapshot directories without
 * their record or content, and volume directories without a record. All of
 * it is garbage: nothing refers to it, and `--repair` removes it.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SNAPSHOTS_DIR, SNAPSHOT_RECORD } from '../runtime/volume-snapshots.ts';
import { removeTree } from '../runtime/volume-tree.ts';
import { VOLUME_NAME, VolumeStore } from '../runtime/volumes.ts';
import { TEMP_MARK, lstatIfExists } from '../util/fs-atomic.ts';
import { lockFile } from '../sys/lock.ts';
import type { Finding } from './check.ts';
import type { Context } from './context.ts';

function names(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

export function checkVolumes(ctx: Context, repair: boolean): Finding[] {
  const store = new VolumeStore(ctx.paths.root);
  const found: Finding[] = [];
  const garbage = (what: string, path: string, why = ''): void => {
    if (repair) removeTree(path);
    found.push({ severity: 'garbage', what, detail: why ? `${path}: ${why}` : path, repaired: repair });
  };
  const sweep = (): void => {
    for (const n of names(store.dir)) {
      const dir = join(store.dir, n);
      if (n.startsWith(TEMP_MARK)) {
        garbage('temporary file', dir);
        continue;
      }
      if (!VOLUME_NAME.test(n) || !lstatIfExists(dir)?.isDirectory()) continue;
      if (!lstatIfExists(join(dir, 'volume.json'))) {
        garbage('volume directory', dir, 'it has no volume.json, so it is no volume');
        continue;
      }
      // A volume whose lock is held is being worked on: its temporary files are someone's work in progress.
      const lock = lockFile(store.volumeLockPath(n), { wait: false });
      if (!lock) continue;
      try {
        for (const m of names(dir)) if (m.startsWith(TEMP_MARK)) garbage('temporary file', join(dir, m));
        const snaps = join(dir, SNAPSHOTS_DIR);
        for (const s of names(snaps)) {
          const p = join(snaps, s);
          if (s.startsWith(TEMP_MARK)) garbage('temporary file', p);
          else if (!lstatIfExists(join(p, SNAPSHOT_RECORD)) || !lstatIfExists(join(p, '_data'))) {
            garbage('volume snapshot', p, 'it lacks its record or its content (a snapshot nothing can use)');
          }
        }
      } finally {
        lock.release();
      }
    }
  };
  // Under the store's lock: a command making a snapshot or volume right now is not garbage.
  if (lstatIfExists(store.dir)) store.withStoreLock(sweep);
  return found;
}
