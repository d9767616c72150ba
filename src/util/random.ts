/**
 * Random hex for ids and temporary names, read from /dev/urandom: loading
 * node:crypto for it would cost a container start about 13 ms.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export function randomHex(bytes: number): string {
  const buf = Buffer.allocUnsafe(bytes);
  const fd = openSync('/dev/urandom', 'r');
  try {
    let off = 0;
    while (off < bytes) off += readSync(fd, buf, off, bytes - off, null);
  } finally {
    closeSync(fd);
  }
  return buf.toString('hex');
}
