/**
 * The records of a log file in order, optionally following it as conmon
 * appends to it.
 *
 * Rotation, as conmon 2.1.6 does it (reopen_k8s_file in src/ctr_logging.c):
 * when writing the next record would take the bytes conmon wrote since it
 * opened the file past --log-size-max, it fsyncs and closes the file, opens
 * PATH.tmp with O_TRUNC, and renames PATH.tmp over PATH. No PATH.1 is kept:
 * the old content is gone, and PATH is a new inode starting empty. (The same
 * happens when conmon gets a reopen-logs message on its control FIFO. A
 * restarted container's conmon opens PATH with O_APPEND and keeps appending.)
 * So a follower whose open file stops growing looks at PATH: another inode
 * means a rotation, and it drains its old file (conmon may have written to it
 * between the follower's last read and the rename) before reading the new
 * one from its start. A file that shrank was truncated in place (not
 * conmon's way, but `copytruncate` tools do it): start again from 0.
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { errnoCode } from '../../util/errors.ts';
import { parseRecordBytes, type RawRecord } from './record.ts';

const CHUNK = 64 * 1024;
// A "line" longer than this is not conmon's (its records are under 8.3 KB): skip it.
const MAX_LINE = 1024 * 1024;

export type SourceEvent =
  | { kind: 'record'; record: RawRecord }
  /** Following, the first time the end of the file is reached. */
  | { kind: 'caught-up' };

export interface SourceOptions {
  follow?: boolean;
  /** Following ends once this returns false and the file is drained. */
  isRunning?: () => boolean;
  signal?: AbortSignal;
  pollMs?: number;
  /** Where to start in the file first opened (for --tail). */
  start?: (fh: FileHandle, size: number) => Promise<number>;
}

interface OpenLog {
  fh: FileHandle;
  dev: bigint;
  ino: bigint;
}

async function openLog(path: string): Promise<OpenLog | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  const st = await fh.stat({ bigint: true });
  return { fh, dev: st.dev, ino: st.ino };
}

/** Cuts bytes into lines across reads; a line's newline is dropped. */
class LineSplitter {
  #rest = Buffer.alloc(0);
  #skipping = false;

  push(chunk: Buffer): Buffer[] {
    const data = this.#rest.length > 0 ? Buffer.concat([this.#rest, chunk]) : chunk;
    const lines: Buffer[] = [];
    let from = 0;
    for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, from)) {
      if (!this.#skipping) lines.push(data.subarray(from, nl));
      this.#skipping = false;
      from = nl + 1;
    }
    this.#rest = Buffer.from(data.subarray(from));
    if (this.#rest.length > MAX_LINE) {
      this.#rest = Buffer.alloc(0);
      this.#skipping = true;
    }
    return lines;
  }

  /** Bytes after the last newline: a record still being written, or torn. */
  takeRest(): Buffer {
    const rest = this.#rest;
    this.reset();
    return rest;
  }

  reset(): void {
    this.#rest = Buffer.alloc(0);
    this.#skipping = false;
  }
}

/**
 * Sleeps until the log's directory reports a change to the log (inotify sees
 * writes, and the rename of a rotation, which a watch on the file itself
 * would miss), pollMs passes (for file systems without inotify), or abort.
 */
class ChangeWaiter {
  #watcher: FSWatcher | undefined;
  #changed = false;
  #wake: (() => void) | undefined;
  readonly #pollMs: number;
  readonly #signal: AbortSignal | undefined;

  constructor(path: string, pollMs: number, signal: AbortSignal | undefined) {
    this.#pollMs = pollMs;
    this.#signal = signal;
    const name = basename(path);
    try {
      this.#watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
        // PATH.tmp is conmon's rotation in progress; no name: the kernel did not say.
        if (file === null || file === name || file === `${name}.tmp`) this.#poke();
      });
      this.#watcher.on('error', () => this.#closeWatcher());
    } catch {
      // No inotify (limits reached, or a file system without it): polling alone.
    }
  }

  #poke(): void {
    this.#changed = true;
    this.#wake?.();
  }

  #closeWatcher(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  wait(): Promise<void> {
    if (this.#changed || this.#signal?.aborted) {
      this.#changed = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#signal?.removeEventListener('abort', done);
        this.#wake = undefined;
        this.#changed = false;
        resolve();
      };
      const timer = setTimeout(done, this.#pollMs);
      this.#signal?.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }

  close(): void {
    this.#wake?.();
    this.#closeWatcher();
  }
}

type Change = 'none' | 'replaced' | 'truncated';

/** Has PATH stopped being the file we read (rotated, removed, created) or shrunk? */
async function changeOf(path: string, current: OpenLog | undefined, pos: number): Promise<Change> {
  let st;
  try {
    st = await stat(path, { bigint: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return current ? 'replaced' : 'none';
    throw e;
  }
  if (!current || st.ino !== current.ino || st.dev !== current.dev) return 'replaced';
  return st.size < BigInt(pos) ? 'truncated' : 'none';
}

export async function* logRecords(path: string, opts: SourceOptions = {}): AsyncGenerator<SourceEvent> {
  const follow = opts.follow ?? false;
  const waiter = follow ? new ChangeWaiter(path, opts.pollMs ?? 250, opts.signal) : undefined;
  let log = await openLog(path);
  try {
    let pos = log && opts.start ? await opts.start(log.fh, (await log.fh.stat()).size) : 0;
    const lines = new LineSplitter();
    let caughtUp = false;
    // The old file was drained once more after PATH changed: switch at its end.
    let switchAtEnd = false;
    // The container was seen stopped: what the file holds now is all there is.
    let lastPass = false;
    for (;;) {
      if (opts.signal?.aborted) return;
      if (log) {
        const buf = Buffer.allocUnsafe(CHUNK);
        const { bytesRead } = await log.fh.read(buf, 0, CHUNK, pos);
        if (bytesRead > 0) {
          pos += bytesRead;
          for (const line of lines.push(buf.subarray(0, bytesRead))) {
            const record = parseRecordBytes(line);
            if (record) yield { kind: 'record', record };
          }
          continue;
        }
      }
      // At the end of the file.
      if (!follow) break;
      if (switchAtEnd) {
        switchAtEnd = false;
        await log?.fh.close();
        log = await openLog(path);
        pos = 0;
        // A torn record at the end of the old file has no rest anywhere.
        lines.reset();
        continue;
      }
      const change = await changeOf(path, log, pos);
      if (change === 'replaced') {
        switchAtEnd = true;
        continue;
      }
      if (change === 'truncated') {
        pos = 0;
        lines.reset();
        continue;
      }
      if (!caughtUp) {
        caughtUp = true;
        yield { kind: 'caught-up' };
      }
      if (lastPass) break;
      // Asked before one more read, so nothing written before the stop is missed.
      if (opts.isRunning && !opts.isRunning()) {
        lastPass = true;
        continue;
      }
      await waiter!.wait();
    }
    // conmon ends every record with a newline; a last line without one was
    // cut short (a full disk, or another writer): show it if it still parses.
    const rest = lines.takeRest();
    const record = rest.length > 0 ? parseRecordBytes(rest) : undefined;
    if (record) yield { kind: 'record', record };
  } finally {
    waiter?.close();
    await log?.fh.close();
  }
}
