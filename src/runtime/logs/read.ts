/**
 * `logs`: a container's k8s-file log as logical lines, with docker's
 * --tail, --since, --until and --follow.
 */
import { findTailStart } from './tail.ts';
import { logRecords } from './source.ts';
import type { LogStream, LogTime, RawRecord } from './record.ts';
import { formatUtcNs, msToNs } from './time.ts';

export interface LogEntry {
  stream: LogStream;
  /** The whole logical line: its P pieces joined, with '\n' when it ended in F. */
  text: string;
  /** When the line was finished (its F record), RFC 3339 in UTC, nine fraction digits. */
  iso: string;
  /** The same instant in nanoseconds since the epoch. */
  ns: bigint;
}

export interface ReadLogsOptions {
  /** The last N logical lines only; undefined or -1: all. */
  tail?: number;
  /** Lines from this instant on (nanoseconds since the epoch, inclusive). */
  since?: bigint;
  /** Lines up to this instant (inclusive); reading stops at the first line after it. */
  until?: bigint;
  follow?: boolean;
  /** Following ends once this returns false and the file is drained; without it, only on abort. */
  isRunning?: () => boolean;
  signal?: AbortSignal;
  /** How often a follower looks at the file when no change is reported; 250 ms. */
  pollMs?: number;
}

function entry(stream: LogStream, time: LogTime, parts: Buffer[], ended: boolean): LogEntry {
  if (ended) parts.push(Buffer.from('\n'));
  const text = Buffer.concat(parts).toString('utf8');
  return { stream, text, iso: formatUtcNs(time.ns), ns: time.ns };
}

/**
 * Joins each stream's P pieces to its F. A line takes the time of its F, as
 * podman's reader does: the moment the line was complete.
 */
class LineJoiner {
  readonly #pending = new Map<LogStream, { parts: Buffer[]; last: LogTime }>();

  add(r: RawRecord): LogEntry | undefined {
    const held = this.#pending.get(r.stream);
    if (r.partial) {
      if (held) {
        held.parts.push(r.content);
        held.last = r.time;
      } else this.#pending.set(r.stream, { parts: [r.content], last: r.time });
      return undefined;
    }
    this.#pending.delete(r.stream);
    return entry(r.stream, r.time, held ? [...held.parts, r.content] : [r.content], true);
  }

  /** Lines never finished (the container stopped mid-line), oldest first, without '\n'. */
  unfinished(): LogEntry[] {
    const out = [...this.#pending].map(([stream, held]) => entry(stream, held.last, held.parts, false));
    this.#pending.clear();
    return out.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
  }
}

/** The last `n` lines seen; trimmed in batches so keeping a line costs O(1). */
class LastLines {
  readonly #n: number;
  #lines: LogEntry[] = [];

  constructor(n: number) {
    this.#n = n;
  }

  push(e: LogEntry): void {
    this.#lines.push(e);
    if (this.#lines.length >= 2 * this.#n + 1024) this.#lines = this.#lines.slice(-this.#n);
  }

  take(): LogEntry[] {
    const out = this.#n === 0 ? [] : this.#lines.slice(-this.#n);
    this.#lines = [];
    return out;
  }
}

export async function* readLogs(path: string, opts: ReadLogsOptions = {}): AsyncGenerator<LogEntry> {
  const { since, until, signal } = opts;
  const tail = opts.tail === undefined || opts.tail < 0 ? undefined : opts.tail;
  // Docker reads the tail first and filters it by time after.
  let last = tail === undefined ? undefined : new LastLines(tail);
  const joiner = new LineJoiner();
  // A follower with --until stops once the clock passes it, as docker's does.
  const untilPassed = (): boolean => until !== undefined && msToNs(Date.now()) > until;
  const isRunning =
    opts.isRunning !== undefined || until !== undefined
      ? () => !untilPassed() && (opts.isRunning?.() ?? true)
      : undefined;
  const records = logRecords(path, {
    follow: opts.follow ?? false,
    isRunning,
    signal,
    pollMs: opts.pollMs,
    start: tail === undefined ? undefined : (fh, size) => findTailStart(fh, size, tail),
  });

  // Which of `ready` to show; false once a line is past --until (reading ends).
  function* release(ready: LogEntry[]): Generator<LogEntry, boolean> {
    for (const e of ready) {
      if (until !== undefined && e.ns > until) return false;
      if (since === undefined || e.ns >= since) yield e;
    }
    return true;
  }

  for await (const ev of records) {
    let ready: LogEntry[];
    if (ev.kind === 'caught-up') {
      ready = last?.take() ?? [];
      last = undefined;
    } else {
      const e = joiner.add(ev.record);
      if (!e) continue;
      if (last) {
        last.push(e);
        continue;
      }
      ready = [e];
    }
    if (!(yield* release(ready))) return;
  }
  if (signal?.aborted) return;
  const rest = joiner.unfinished();
  if (last) {
    for (const e of rest) last.push(e);
    rest.splice(0, rest.length, ...last.take());
  }
  yield* release(rest);
}
