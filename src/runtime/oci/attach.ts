/**
 * Attaching to a container through conmon's attach socket. The socket is
 * SOCK_SEQPACKET: each packet conmon sends is one chunk of output, its first
 * byte naming the stream (2 stdout, 3 stderr); each packet written to it is
 * stdin. Node's net module cannot open such sockets, so the native addon
 * connects and the fd is read and written with fs calls (reads block one
 * libuv pool thread, which is what a pipe read costs too).
 */
import { closeSync, read, writeSync } from 'node:fs';
import { sys } from '../../sys/native.ts';

export const STDOUT_PIPE = 2;
export const STDERR_PIPE = 3;
/** conmon reads at most this much per packet. */
const MAX_PACKET = 8192;

export interface Attachment {
  /** Resolves when conmon closes the socket (the container's streams ended). */
  done: Promise<void>;
  write(data: Uint8Array): void;
  /** EOF on the container's stdin. */
  closeStdin(): void;
  close(): void;
}

export function attachSocket(path: string, onOutput: (stream: 1 | 2, data: Buffer) => void): Attachment {
  const fd = sys().connectSeqpacket(path);
  let closed = false;
  let fdClosed = false;
  let reading = false;
  const closeFd = (): void => {
    if (fdClosed) return;
    fdClosed = true;
    try {
      closeSync(fd);
    } catch {
      // Already gone with conmon.
    }
  };
  const done = new Promise<void>((resolve) => {
    const buf = Buffer.allocUnsafe(MAX_PACKET + 1);
    const finish = (): void => {
      reading = false;
      // The fd is closed only once no read is pending on it: its number could be reused meanwhile.
      if (closed) closeFd();
      resolve();
    };
    const next = (): void => {
      if (closed) return finish();
      reading = true;
      read(fd, buf, 0, buf.length, null, (err, n) => {
        if (err || n === 0) return finish();
        const kind = buf[0];
        if (n > 1) onOutput(kind === STDERR_PIPE ? 2 : 1, Buffer.from(buf.subarray(1, n)));
        next();
      });
    };
    next();
  });
  return {
    done,
    write(data: Uint8Array): void {
      try {
        for (let off = 0; off < data.length && !closed; off += MAX_PACKET) {
          writeSync(fd, data.subarray(off, Math.min(data.length, off + MAX_PACKET)));
        }
      } catch {
        // The container's stdin has closed (it exited, or stopped reading): input is dropped, as docker does.
      }
    },
    closeStdin(): void {
      try {
        if (!closed) sys().shutdownWrite(fd);
      } catch {
        // Already closed by conmon.
      }
    },
    close(): void {
      if (closed) return;
      closed = true;
      try {
        // Wake the read pending in a pool thread: Node waits for it before it can exit.
        sys().shutdownBoth(fd);
      } catch {
        // Already shut down by conmon.
      }
      if (!reading) closeFd();
    },
  };
}

/** Tells conmon the terminal's size (its control fifo: "1 ROWS COLS"). */
export function resizeTerminal(bundle: string, rows: number, cols: number): void {
  const { openSync, closeSync: close, writeSync: write, constants } = process.getBuiltinModule('node:fs');
  try {
    const fd = openSync(`${bundle}/ctl`, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      write(fd, `1 ${rows} ${cols}\n`);
    } finally {
      close(fd);
    }
  } catch {
    // conmon has gone: nothing to resize.
  }
}
