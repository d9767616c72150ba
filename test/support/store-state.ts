/**
 * What store snapshot tests compare before and after a rollback: the
 * images, containers and volumes as the CLI lists them, and every finding of
 * `system check`, each as sorted lines.
 */
import assert from 'node:assert/strict';
import type { Result, Sandbox } from './hutch.ts';

export interface StoreState {
  images: string[];
  containers: string[];
  volumes: string[];
}

/** The command's result, failing the test with its output when it did not succeed. */
export function ok(r: Result, what: string): Result {
  assert.equal(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
  return r;
}

export function sortedLines(r: Result): string[] {
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

function quiet(box: Sandbox, args: string[]): Result {
  return box.hutch(args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

export function storeState(box: Sandbox): StoreState {
  const list = (args: string[]): string[] => sortedLines(ok(quiet(box, args), args.join(' ')));
  return {
    images: list(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']),
    containers: list(['ps', '-a', '--format', '{{.ID}} {{.Names}} {{.Image}}']),
    volumes: list(['volume', 'ls', '-q']),
  };
}

/** Every finding of `system check`, of any severity, as "severity: what: detail". */
export function allFindings(box: Sandbox): string[] {
  const r = quiet(box, ['system', 'check', '--format', 'json']);
  return (
    JSON.parse(r.stdout) as { findings: { severity: string; what: string; detail: string }[] }
  ).findings.map((f) => `${f.severity}: ${f.what}: ${f.detail}`);
}
