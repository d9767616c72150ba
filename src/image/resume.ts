/**
 * A blob download that survives a broken connection: when the stream fails
 * with a network error (or ends short), it asks again from the byte where it
 * stopped (HTTP Range), skipping what it already has when the registry
 * ignores the range. The bytes come out as one uninterrupted stream, so the
 * digest and unpacking downstream never notice.
 */
import { Readable } from 'node:stream';
import { isRetryableNetworkError } from './registry/errors.ts';
import type { Digest } from './types.ts';

export interface BlobSource {
  getBlob(
    repository: string,
    digest: Digest,
    opts?: { offset?: number },
  ): Promise<{ stream: Readable; size: number; offset?: number }>;
}

class ShortRead extends Error {
  readonly code = 'ECONNRESET';
}

export function resumableBlob(
  registry: BlobSource,
  repository: string,
  digest: Digest,
  size: number,
  opts: { tries?: number; baseDelayMs?: number; onResume?: (offset: number) => void } = {},
): Readable {
  const tries = opts.tries ?? 5;
  const base = opts.baseDelayMs ?? 200;
  /** The response being read, destroyed with the stream: a generator waiting on it cannot be stopped otherwise. */
  let current: Readable | undefined;
  let destroyed = false;
  async function* bytes(): AsyncGenerator<Buffer> {
    let have = 0;
    for (let attempt = 1; ; attempt++) {
      if (destroyed) throw new Error('the download was stopped');
      const r = await registry.getBlob(repository, digest, have > 0 ? { offset: have } : {});
      current = r.stream;
      if (destroyed) r.stream.destroy();
      let skip = have - (r.offset ?? 0);
      try {
        for await (const chunk of r.stream) {
          let c = chunk as Buffer;
          if (skip > 0) {
            if (c.length <= skip) {
              skip -= c.length;
              continue;
            }
            c = c.subarray(skip);
            skip = 0;
          }
          have += c.length;
          yield c;
        }
        if (size >= 0 && have < size) throw new ShortRead(`the blob ended after ${have} of ${size} bytes`);
        return;
      } catch (e) {
        r.stream.destroy();
        if (destroyed || !(e instanceof ShortRead || isRetryableNetworkError(e)) || attempt >= tries) throw e;
        opts.onResume?.(have);
        await new Promise((resolve) => setTimeout(resolve, base * 2 ** (attempt - 1)));
      }
    }
  }
  const out = Readable.from(bytes(), { objectMode: false, highWaterMark: 1 << 20 });
  // Readable.from ends the generator only at its next yield; a response that
  // is slow to send would hold the stream (and its connection) open until then.
  const destroy = out._destroy.bind(out);
  out._destroy = (err, cb): void => {
    destroyed = true;
    current?.destroy();
    destroy(err, cb);
  };
  return out;
}
