/**
 * Writes to a file on libuv's thread pool while the caller goes on. On a
 * machine where copying into new page-cache pages is slow (every page first
 * touched costs the hypervisor a fault), a pull that writes a layer's blob and
 * files synchronously spends much of its main thread there; written behind,
 * the copies run on the second core. One write is in flight at a time,
 * carrying everything added while the one before ran (up to IOV_MAX
 * buffers), so the file grows in order and big batches form by themselves.
 *
 * The buffers added must not change afterwards. The owner keeps the
 * descriptor open until `idle()` resolves: closed earlier, its number could
 * be reused by another file before a queued write runs.
 */

/** Most buffers in one writev: the kernel takes up to IOV_MAX (1024). */
const BATCH_BUFFERS = 512;

export class WriteBehind {
  readonly #fd: number;
  /** Where the next write goes: bytes written so far, from `start`. */
  #at: number;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #inFlight = 0;
  #failed: Error | undefined;
  #waiters: (() => void)[] = [];
  /** Called after every write that ends, for owners that watch several writers. */
  readonly #onWritten: (() => void) | undefined;

  constructor(fd: number, start = 0, onWritten?: () => void) {
    this.#fd = fd;
    this.#at = start;
    this.#onWritten = onWritten;
  }

  /** Bytes added and not yet written. */
  get pending(): number {
    return this.#queued + this.#inFlight;
  }

  /** The first failed write's error; later adds are dropped. */
  get failed(): Error | undefined {
    return this.#failed;
  }

  add(chunk: Uint8Array): void {
    if (this.#failed || chunk.length === 0) return;
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (this.#inFlight === 0) this.#next();
  }

  /** Resolves once everything added is written; rejects with the first failure. */
  async idle(): Promise<void> {
    while (this.pending > 0 && !this.#failed) await this.written();
    if (this.#failed) throw this.#failed;
  }

  /** Resolves when the next write ends (at once after a failure). */
  written(): Promise<void> {
    if (this.#failed || this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #next(): void {
    const buffers = this.#queue.splice(0, BATCH_BUFFERS);
    if (buffers.length === 0) return;
    let bytes = 0;
    for (const b of buffers) bytes += b.length;
    this.#queued -= bytes;
    this.#inFlight = bytes;
    this.#write(buffers, bytes);
  }

  /** Writes `bytes` of `buffers` at the current end, again for what a short write left. */
  #write(buffers: Uint8Array[], bytes: number): void {
    const { writev } = process.getBuiltinModule('node:fs');
    writev(this.#fd, buffers, this.#at, (e, n) => {
      if (!e) {
        this.#at += n;
        this.#inFlight -= n;
        if (n < bytes && n > 0) return this.#write(rest(buffers, n), bytes - n);
        if (n < bytes) e = Object.assign(new Error('a write to the file wrote nothing'), { code: 'EIO' });
      }
      if (e) {
        this.#failed ??= e;
        this.#inFlight = 0;
        this.#queue = [];
        this.#queued = 0;
      } else this.#next();
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
      this.#onWritten?.();
    });
  }
}

/**
 * Closes `fd` now, or once the writes of `w` to it have ended (failed or
 * not): closed under a write in flight, its number could be reused by
 * another file before the write runs.
 */
export function closeWhenWritten(fd: number, w: WriteBehind | undefined): void {
  const { closeSync } = process.getBuiltinModule('node:fs');
  if (!w || w.pending === 0) closeSync(fd);
  else
    void w.idle().then(
      () => closeSync(fd),
      () => closeSync(fd),
    );
}

/** What is left of `buffers` after their first `n` bytes. */
function rest(buffers: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of buffers) {
    if (n >= b.length) n -= b.length;
    else {
      out.push(n > 0 ? b.subarray(n) : b);
      n = 0;
    }
  }
  return out;
}
