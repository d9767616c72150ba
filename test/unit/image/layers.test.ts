/** Layer streams in every compression registries use, sniffed rather than trusted. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { decompressed } from '../../../src/image/layers.ts';

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('decompressed', () => {
  const tar = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < tar.length; i++) tar[i] = (i * 31 + (i >> 9)) & 0xff;
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const chunked = (b: Buffer): Readable =>
    Readable.from([b.subarray(0, 3), b.subarray(3, 70000), b.subarray(70000)]);

  const cases: [string, Buffer][] = [
    ['plain tar', tar],
    ['gzip', gzipSync(tar)],
    ['zstd', zstdCompressSync(tar)],
  ];
  for (const [name, bytes] of cases) {
    it(`gives back the tar from ${name}, however it is chunked`, async () => {
      assert.equal(sha(await collect(decompressed(chunked(bytes)))), sha(tar));
    });
  }

  /** `bytes` in `size`-byte pieces, each a turn of the event loop after the last when `trickle`. */
  function pieces(bytes: Buffer, size: number, trickle: boolean): Readable {
    return Readable.from(
      (async function* () {
        for (let o = 0; o < bytes.length; o += size) {
          if (trickle) await new Promise((resolve) => setImmediate(resolve));
          yield bytes.subarray(o, o + size);
        }
      })(),
      { objectMode: false },
    );
  }

  for (const trickle of [false, true]) {
    it(`gives back the tar from gzip in 4 KiB pieces ${trickle ? 'that trickle in' : 'all there at once'}`, async () => {
      assert.equal(sha(await collect(decompressed(pieces(gzipSync(tar), 4096, trickle)))), sha(tar));
    });
  }

  it('reports corrupt gzip in many pieces as an error, and ends', async () => {
    const bad = gzipSync(tar);
    bad[bad.length >> 1]! ^= 0xff;
    await assert.rejects(collect(decompressed(pieces(bad, 4096, false))));
  });

  it('passes a stream shorter than a magic number through whole', async () => {
    assert.deepEqual(
      await collect(decompressed(Readable.from([Buffer.from([1]), Buffer.from([2])]))),
      Buffer.from([1, 2]),
    );
  });

  it('passes an empty stream through as empty', async () => {
    assert.equal((await collect(decompressed(Readable.from([])))).length, 0);
  });

  it('reports corrupt gzip as an error, not as data', async () => {
    const bad = gzipSync(tar);
    bad[bad.length >> 1]! ^= 0xff;
    await assert.rejects(collect(decompressed(Readable.from([bad]))));
  });
});
