/**
 * Helpers for volume snapshot tests: a checksum of a volume's whole tree as
 * the namespace sees it (names, types, modes, owners, times to the second,
 * contents, link targets: GNU tar's view, sorted, so equal trees give equal
 * sums), and reading a stream's header.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { HUTCH } from './hutch.ts';
import type { Sandbox } from './hutch.ts';

export function treeSum(box: Sandbox, dir: string): string {
  const t = spawnSync(
    HUTCH,
    ['unshare', 'tar', '--sort=name', '--numeric-owner', '-C', dir, '-cf', '-', '.'],
    {
      env: box.env,
      maxBuffer: 1 << 30,
    },
  );
  assert.equal(t.status, 0, `tar of ${dir}: ${String(t.stderr)}`);
  return createHash('sha256').update(t.stdout).digest('hex');
}

/** The JSON header of a stream file (its second line). */
export function streamHeader(file: string): { format: string; deleted: string[]; base?: { name: string } } {
  const text = readFileSync(file)
    .subarray(0, 1 << 20)
    .toString('latin1');
  const lines = text.split('\n');
  assert.equal(lines[0], 'HUTCH-VOLUME-STREAM 1');
  return JSON.parse(Buffer.from(lines[1]!, 'latin1').toString('utf8')) as {
    format: string;
    deleted: string[];
    base?: { name: string };
  };
}
