/**
 * Temporary directories for a test file, removed when the file's tests end.
 * The path is the real one (no symbolic link in it), as code that checks
 * where a path leads wants.
 */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

const made: string[] = [];
// Registered on import, at the top level: a hook added inside a test would run when that test ends.
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

export function tempDir(prefix = 'hutch-test-'): string {
  const d = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  made.push(d);
  return d;
}
