/**
 * One line of a k8s-file log. conmon 2.1.6 writes them in write_k8s_log and
 * set_k8s_timestamp (src/ctr_logging.c), e.g.
 *
 *   2026-11-22T04:00:34.721697193-05:00 stdout P no newline
 *   2026-11-22T04:00:34.924122281-05:00 stdout F  continued
 *
 * - The timestamp is conmon's *local* time (localtime_r under its TZ), with
 *   nine fraction digits and a ±HH:MM offset; conmon never writes `Z`, but
 *   CRI-O does, so both are read.
 * - The stream is stdout or stderr (with a terminal, everything is stdout).
 * - conmon splits each read from the container's pipe at newlines: a piece
 *   that ends one is tagged F; the rest of a read that has no newline is
 *   tagged P and given one, so every record is one line. A long line thus
 *   becomes P records cut at the pipe's read boundaries (at most 8192 bytes,
 *   STDIO_BUF_SIZE) and then an F; records of the other stream may sit
 *   between a P and the F that finishes it. A P may also cut a multi-byte
 *   UTF-8 character in two, so pieces are joined as bytes.
 * - Every record from one read shares one timestamp.
 */
import { civilToNs, parseOffset } from './time.ts';

export type LogStream = 'stdout' | 'stderr';

export interface LogTime {
  /** The timestamp exactly as the log file has it. */
  iso: string;
  /** Nanoseconds since the epoch. */
  ns: bigint;
}

export interface LogRecord {
  time: LogTime;
  stream: LogStream;
  /** P: the text continues in the stream's next record. */
  partial: boolean;
  /** The content, without the record's ending newline. */
  text: string;
}

/** A record whose content stays bytes, so split characters can be rejoined. */
export interface RawRecord {
  time: LogTime;
  stream: LogStream;
  partial: boolean;
  content: Buffer;
}

const LOG_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

// The header (timestamp, stream, tag) is ASCII and at most about 50 bytes.
const HEADER_MAX = 64;

export function parseLogTime(iso: string): LogTime | undefined {
  const m = LOG_TIME.exec(iso);
  if (!m) return undefined;
  const offsetMinutes = parseOffset(m[8]!);
  if (offsetMinutes === undefined) return undefined;
  const ns = civilToNs({
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: Number(m[4]),
    minute: Number(m[5]),
    second: Number(m[6]),
    fraction: m[7] ?? '',
    offsetMinutes,
  });
  return ns === undefined ? undefined : { iso, ns };
}

interface Header {
  time: LogTime;
  stream: LogStream;
  partial: boolean;
  /** Where the content starts, in bytes (the header is ASCII: bytes = chars). */
  contentStart: number;
}

function parseHeader(head: string, lineLength: number): Header | undefined {
  const sp1 = head.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : head.indexOf(' ', sp1 + 1);
  if (sp2 < 0) return undefined;
  const stream = head.slice(sp1 + 1, sp2);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const tag = head[sp2 + 1];
  if (tag !== 'F' && tag !== 'P') return undefined;
  // "F " precedes the content; an empty record may have lost its trailing space.
  const after = sp2 + 2;
  if (after < lineLength && head[after] !== ' ') return undefined;
  const time = parseLogTime(head.slice(0, sp1));
  if (!time) return undefined;
  return { time, stream, partial: tag === 'P', contentStart: Math.min(after + 1, lineLength) };
}

/** One line of the file (its newline already removed), or undefined when malformed. */
export function parseRecordBytes(line: Buffer): RawRecord | undefined {
  const h = parseHeader(line.toString('latin1', 0, Math.min(line.length, HEADER_MAX)), line.length);
  if (!h) return undefined;
  // A copy: the line may be a view of a read buffer that is about to be reused.
  const content = Buffer.from(line.subarray(h.contentStart));
  return { time: h.time, stream: h.stream, partial: h.partial, content };
}

/** Just the stream and tag, for scanning a file without copying contents. */
export function peekRecord(line: Buffer): { stream: LogStream; partial: boolean } | undefined {
  return parseHeader(line.toString('latin1', 0, Math.min(line.length, HEADER_MAX)), line.length);
}

/** One line of a k8s-file log as text; a trailing newline is allowed. Malformed → undefined. */
export function parseLogLine(line: string): LogRecord | undefined {
  const r = parseRecordBytes(Buffer.from(line.endsWith('\n') ? line.slice(0, -1) : line, 'utf8'));
  if (!r) return undefined;
  return { time: r.time, stream: r.stream, partial: r.partial, text: r.content.toString('utf8') };
}
