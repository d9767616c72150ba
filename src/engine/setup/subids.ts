/** Sub-id ranges for the user: one free range of 65536 ids, the same in both files. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { firstFreeRange, overlapping, parseSubIdFile, rangesFor, totalIds } from '../../rootless/subid.ts';
import { readIfExists, writeFileAtomic } from '../../util/fs-atomic.ts';
import type { SetupStep, SetupTarget } from './types.ts';

export const SUBID_COUNT = 65536;

export function subIdStep(t: SetupTarget): SetupStep {
  const files = ['subuid', 'subgid'].map((n) => {
    const path = join(t.hostRoot, 'etc', n);
    const text = readIfExists(path) ?? '';
    return { path, text, parsed: parseSubIdFile(text, path) };
  });
  const who = { name: t.user.name, id: t.user.uid };
  const mine = files.map((f) => rangesFor(f.parsed, who));
  const clashes = files.flatMap((f, i) => overlapping(f.parsed, mine[i] ?? []));
  if (clashes.length > 0) {
    return {
      id: 'subids',
      title: 'sub-id ranges',
      status: 'manual',
      detail:
        `${t.user.name}'s ranges overlap those of ${[...new Set(clashes.map((c) => c.owner))].join(', ')}: ` +
        "two users sharing ids can read and change each other's container files. Remove the overlapping " +
        'lines by hand; hutch will then allocate a fresh range.',
    };
  }
  if (mine.every((m) => totalIds(m) >= SUBID_COUNT)) {
    return {
      id: 'subids',
      title: 'sub-id ranges',
      status: 'ok',
      detail: `${t.user.name} has enough sub-ids`,
    };
  }
  const range = firstFreeRange(
    files.map((f) => f.parsed),
    SUBID_COUNT,
  );
  const line = `${t.user.name}:${range.start}:${range.count}`;
  const todo = files.filter((_, i) => totalIds(mine[i] ?? []) < SUBID_COUNT);
  return {
    id: 'subids',
    title: 'sub-id ranges',
    status: 'change',
    detail: `allocate ids ${range.start}-${range.start + range.count - 1} to ${t.user.name}`,
    diff: todo.map((f) => `${f.path}: +${line}`),
    undo: todo.map((f) => ({ kind: 'line', path: f.path, line })),
    apply: () => {
      for (const f of todo) {
        // Re-read: another admin tool may have changed the file since planning.
        const current = (() => {
          try {
            return readFileSync(f.path, 'utf8');
          } catch {
            return '';
          }
        })();
        const sep = current === '' || current.endsWith('\n') ? '' : '\n';
        writeFileAtomic(f.path, `${current}${sep}${line}\n`, 0o644);
      }
    },
  };
}
