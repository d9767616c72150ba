/**
 * Where hutch's native pieces are. The code runs from src/ in tests and from
 * the esbuild bundle in dist/ otherwise, so the package root is found by
 * walking up from this module's URL to the first directory that holds the
 * built helper, not by a fixed number of "..".
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HutchError } from '../util/errors.ts';

export const HELPER_RELATIVE = 'native/build/hutch-helper';

/** The nearest directory at or above `start` holding native/build/hutch-helper. */
export function findPackageRoot(start: string): string | undefined {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, HELPER_RELATIVE))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

let cached: string | undefined;

export function packageRoot(): string {
  if (cached !== undefined) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  const root = findPackageRoot(here);
  if (root === undefined) {
    throw new HutchError('NO_HELPER', `hutch-helper was not found in any directory above ${here}`, {
      hint: "Build the native pieces: run 'sh native/build.sh' in hutch's package directory (needs a C compiler).",
    });
  }
  cached = root;
  return root;
}

export function helperPath(): string {
  return join(packageRoot(), HELPER_RELATIVE);
}

/** hutch's listener for published ports with an allowlist (native/portfwd.c). */
export function portfwdPath(): string {
  return join(packageRoot(), 'native/build/hutch-portfwd');
}

/** The helper that hands published ports' host sockets to a container's server (native/handoff.c). */
export function handoffPath(): string {
  return join(packageRoot(), 'native/build/hutch-handoff');
}
