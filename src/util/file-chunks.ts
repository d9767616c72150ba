/**
 * A file's bytes as a stream of chunks, read with plain fs calls.
 * fs.createReadStream loads Node's fs/promises and, through it, readline:
 * about 4 ms of a pull that unpacks a layer from the content store.
 */
import { close, open, read } from 'node:fs';

export async function* fileChunks(path: string, size = 1 << 20): AsyncGenerator<Buffer> {
  const fd = await new Promise<number>((resolve, reject) =>
    open(path, 'r', (e, fd) => (e ? reject(e) : resolve(fd))),
  );
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(size);
      const n = await new Promise<number>((resolve, reject) =>
        read(fd, buf, 0, size, null, (e, n) => (e ? reject(e) : resolve(n))),
      );
      if (n === 0) return;
      yield n === size ? buf : buf.subarray(0, n);
    }
  } finally {
    close(fd, () => {});
  }
}
