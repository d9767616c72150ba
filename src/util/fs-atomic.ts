/**
 * Crash-safe file writes: write a temporary file beside the target, fsync,
 * rename over the target. A reader sees the old content or the new, never
 * half of it; a killed writer leaves only a `.tmp-*` file that nothing reads.
 */
import {
  closeSync,
  fsyncSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import type { Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from './errors.ts';

export const TEMP_MARK = '.tmp-';

export function tempPathFor(target: string): string {
  return join(dirname(target), `${TEMP_MARK}${basename(target)}-${process.pid}-${Date.now()}`);
}

/**
 * `durable: false` skips the fsync, for files that are rebuilt from other
 * state whenever they are needed (a container's spec and /etc files at each
 * start): after a power loss they are simply made again, and the fsync of
 * each costs about a millisecond.
 */
export function writeFileAtomic(
  target: string,
  data: string | Uint8Array,
  mode = 0o644,
  opts: { durable?: boolean } = {},
): void {
  const tmp = tempPathFor(target);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (opts.durable !== false) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function writeJsonAtomic(
  target: string,
  value: unknown,
  mode = 0o644,
  opts: { durable?: boolean } = {},
): void {
  writeFileAtomic(target, JSON.stringify(value, null, 2) + '\n', mode, opts);
}

export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** lstat, or undefined where nothing is: a missing path, or one below a file. */
export function lstatIfExists(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}
