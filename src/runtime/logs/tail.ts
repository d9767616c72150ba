/**
 * Where to start reading so that the last N logical lines are all read,
 * found by scanning the file backwards in chunks: `logs --tail 10` on a
 * 1 GB log reads the end of it, not the whole thing.
 *
 * A logical line is a stream's P records up to its F. Counting F records
 * from the end finds the last N lines, but their P pieces may lie further
 * back, behind records of the other stream; so after N lines the scan goes
 * on until each stream's earliest line is known to be whole (the stream's
 * record before it is an F, or the file begins). A stream's last record
 * being a P means an unfinished line, which the reader shows last; it
 * counts as a line too. The start may include a few lines too many; the
 * reader keeps only the last N of what it reads.
 */
import type { FileHandle } from 'node:fs/promises';
import { peekRecord, type LogStream } from './record.ts';

export const TAIL_CHUNK = 64 * 1024;

// A "line" longer than this is not conmon's (its records are under 8.3 KB): skip it.
const MAX_LINE = 1024 * 1024;

interface Line {
  start: number;
  line: Buffer;
}

/** The file's lines, last first, each with its byte offset; newlines removed. */
async function* linesBackward(fh: FileHandle, size: number, chunkSize: number): AsyncGenerator<Line> {
  let end = size;
  // Bytes after `end` not yet ending a line whose start is known.
  let carry = Buffer.alloc(0);
  let dropNext = false;
  while (end > 0) {
    const from = Math.max(0, end - chunkSize);
    const chunk = Buffer.allocUnsafe(end - from);
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, from);
    const buf = Buffer.concat([chunk.subarray(0, bytesRead), carry]);
    let lineEnd = buf.length;
    let nl = lineEnd > 0 ? buf.lastIndexOf(0x0a, lineEnd - 1) : -1;
    while (nl >= 0) {
      if (dropNext) dropNext = false;
      else if (lineEnd > nl + 1) yield { start: from + nl + 1, line: buf.subarray(nl + 1, lineEnd) };
      lineEnd = nl;
      nl = lineEnd > 0 ? buf.lastIndexOf(0x0a, lineEnd - 1) : -1;
    }
    carry = Buffer.from(buf.subarray(0, lineEnd));
    if (carry.length > MAX_LINE) {
      carry = Buffer.alloc(0);
      dropNext = true;
    }
    end = from;
  }
  if (carry.length > 0 && !dropNext) yield { start: 0, line: carry };
}

// What the scan knows of a stream's earliest record seen so far (scanning backwards).
type StreamState =
  | 'unseen' // no record of the stream yet
  | 'open' // its earliest record belongs to a wanted line that may start further back
  | 'done'; // its wanted lines are whole

/** The byte offset to read from to see the last `lines` logical lines of the file. */
export async function findTailStart(
  fh: FileHandle,
  size: number,
  lines: number,
  chunkSize = TAIL_CHUNK,
): Promise<number> {
  if (lines <= 0) return size;
  const state: Record<LogStream, StreamState> = { stdout: 'unseen', stderr: 'unseen' };
  let counted = 0;
  let start = size;
  for await (const { start: at, line } of linesBackward(fh, size, chunkSize)) {
    const r = peekRecord(line);
    if (!r) continue;
    const s = state[r.stream];
    let wanted: boolean;
    if (r.partial) {
      // A stream's last record being P: its unfinished line, shown last.
      if (s === 'unseen') counted++;
      wanted = s !== 'done';
      if (wanted) state[r.stream] = 'open';
    } else if (counted < lines) {
      counted++;
      wanted = true;
      state[r.stream] = 'open';
    } else {
      // An F before a stream's earliest wanted line: that line is whole, and
      // the stream's records further back belong to lines not wanted.
      wanted = false;
      state[r.stream] = 'done';
    }
    if (wanted) start = at;
    if (counted >= lines && state.stdout !== 'open' && state.stderr !== 'open') break;
  }
  return start;
}
