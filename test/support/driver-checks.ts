/**
 * Checks every storage driver's suite makes of a container's changes: what
 * `diff` lists, and what `export` writes. One place, so the drivers are held
 * to the same account of a container.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { HUTCH } from './hutch.ts';
import type { Sandbox } from './hutch.ts';

/** `hutch diff NAME`'s lines; each of `expected` must be among them. */
export function assertDiffHas(box: Sandbox, name: string, expected: string[]): string[] {
  const r = box.hutch(['diff', name]);
  assert.equal(r.status, 0, r.stderr);
  const diff = r.stdout.trim().split('\n');
  for (const line of expected) assert.ok(diff.includes(line), `${line} in:\n${diff.join('\n')}`);
  return diff;
}

/** The entries of `hutch export NAME`'s tar: names, or `tar -tv` lines with `verbose`. */
export function exportedEntries(box: Sandbox, name: string, verbose = false): string[] {
  const tar = spawnSync(HUTCH, ['export', name], { env: box.env, maxBuffer: 256 << 20 });
  assert.equal(tar.status, 0, String(tar.stderr));
  return spawnSync('tar', [verbose ? '-tv' : '-t'], { input: tar.stdout, encoding: 'utf8' }).stdout.split(
    '\n',
  );
}
