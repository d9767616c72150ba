/** Printing log lines: docker's `logs -t` prefix, and each stream to its own output. */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { LogStream } from './record.ts';
import type { LogEntry } from './read.ts';

/** The line as `logs` prints it; with timestamps, docker's `2026-11-22T08:58:12.123456789Z ` prefix. */
export function formatEntry(e: LogEntry, timestamps: boolean): string {
  return timestamps ? `${e.iso} ${e.text}` : e.text;
}

/** Writes one piece of output; a promise makes the next write wait for it (back-pressure). */
export type StreamWrite = (stream: LogStream, text: string) => void | Promise<void>;

/**
 * Sends each entry to the writer of its stream, in the log's order, one
 * write finished before the next starts. Returns how many were written.
 */
export async function writeLogs(
  entries: AsyncIterable<LogEntry>,
  write: StreamWrite,
  opts: { timestamps?: boolean } = {},
): Promise<number> {
  let count = 0;
  for await (const e of entries) {
    await write(e.stream, formatEntry(e, opts.timestamps ?? false));
    count++;
  }
  return count;
}

/** A StreamWrite onto two Node streams that waits for 'drain' when one is full. */
export function toStreams(stdout: Writable, stderr: Writable): StreamWrite {
  return async (stream, text) => {
    const out = stream === 'stdout' ? stdout : stderr;
    if (!out.write(text)) await once(out, 'drain');
  };
}
