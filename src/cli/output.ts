/** Printing results and errors: stdout for results, stderr for the rest. */
import { writeSync } from 'node:fs';
import { EXIT_ENGINE, errnoCode, isHutchError } from '../util/errors.ts';

/**
 * Writes straight to the descriptor: process.stdout would load Node's stream
 * and socket machinery (several milliseconds) just to print a line. Falls
 * back to the stream when the descriptor is non-blocking and full.
 */
function write(fd: 1 | 2, text: string): void {
  let buf = Buffer.from(text);
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (e) {
      if (errnoCode(e) !== 'EAGAIN') throw e;
      (fd === 1 ? process.stdout : process.stderr).write(buf);
      return;
    }
  }
}

/**
 * A container's output, as bytes, to our stdout or stderr. A reader that has
 * gone (EPIPE) ends the copy quietly: the container runs on regardless.
 */
export function writeRaw(fd: 1 | 2, data: Buffer): void {
  let buf = data;
  while (buf.length) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (e) {
      if (errnoCode(e) !== 'EAGAIN') return;
    }
  }
}

export function out(text: string): void {
  write(1, text.endsWith('\n') || text === '' ? text : text + '\n');
}

export function err(text: string): void {
  write(2, text.endsWith('\n') ? text : text + '\n');
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 4));
}

/** `inspect`'s output: the objects as indented JSON, or each through a --format template. */
export async function printInspected(found: object[], format: string | undefined): Promise<void> {
  if (format === undefined || format === 'json') {
    printJson(found);
    return;
  }
  const { formatOne } = await import('../util/format.lazy.ts');
  for (const f of found) out(formatOne(f, format));
}

/** Reports each error of a command that went on past them; the exit code is the highest of theirs (0 for none). */
export function reportErrors(errors: unknown[]): number {
  let code = 0;
  for (const e of errors) code = Math.max(code, reportError(e));
  return code;
}

/** Prints an error as docker and podman do ("Error: ...") and returns its exit code. */
export function reportError(e: unknown): number {
  const debug = process.env.HUTCH_LOG_LEVEL === 'debug';
  if (isHutchError(e)) {
    err(`Error: ${e.message}`);
    if (e.hint) err(`Hint: ${e.hint}`);
    if (debug && e.cause) err(String(e.cause));
    return e.exitCode;
  }
  const error = e instanceof Error ? e : new Error(String(e));
  err(`Error: ${error.message}`);
  if (debug && error.stack) err(error.stack);
  return EXIT_ENGINE;
}
