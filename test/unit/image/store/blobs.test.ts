import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BlobStore } from '../../../../src/image/store/blobs.ts';
import { HutchError } from '../../../../src/util/errors.ts';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('BlobStore.putAsync', () => {
  const root = mkdtempSync(join(tmpdir(), 'hutch-blobs-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const blobs = new BlobStore(root);

  it('stores the bytes under their digest, visible once the promise resolves', async () => {
    const data = randomBytes(5000);
    const pending = blobs.putAsync(data, sha(data));
    assert.equal(await pending, sha(data));
    assert.ok(blobs.has(sha(data)));
    assert.deepEqual(readFileSync(blobs.path(sha(data))), data);
    assert.deepEqual(readdirSync(blobs.ingestDir), [], 'no temporary file is left');
  });

  it('refuses bytes that do not match the digest asked for, at once and leaving nothing', () => {
    const data = randomBytes(100);
    const other = sha(randomBytes(100));
    assert.throws(
      () => blobs.putAsync(data, other),
      (e) => e instanceof HutchError && e.code === 'DIGEST_MISMATCH',
    );
    assert.equal(existsSync(blobs.path(other)), false);
    assert.equal(blobs.has(sha(data)), false);
    assert.deepEqual(readdirSync(blobs.ingestDir), []);
  });

  it('writes nothing for a blob already stored', async () => {
    const data = randomBytes(64);
    blobs.put(data);
    const before = readFileSync(blobs.path(sha(data)));
    assert.equal(await blobs.putAsync(data), sha(data));
    assert.deepEqual(readFileSync(blobs.path(sha(data))), before);
    assert.deepEqual(readdirSync(blobs.ingestDir), []);
  });
});

describe('BlobWriter.verify', () => {
  const root = mkdtempSync(join(tmpdir(), 'hutch-blobs-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const blobs = new BlobStore(root);

  it('passes for the bytes given, before the blob is stored, which commitAsync then does', async () => {
    const data = randomBytes(300_000);
    const w = blobs.writer();
    for (let o = 0; o < data.length; o += 65536) w.writeBehind(data.subarray(o, o + 65536));
    w.verify(sha(data), data.length);
    assert.equal(blobs.has(sha(data)), false, 'verified is not yet stored');
    await w.commitAsync(sha(data), data.length);
    assert.deepEqual(readFileSync(blobs.path(sha(data))), data);
    assert.deepEqual(readdirSync(blobs.ingestDir), []);
  });

  it('throws DIGEST_MISMATCH for other bytes or another size; commit then leaves nothing', async () => {
    const data = randomBytes(1000);
    for (const [digest, size] of [
      [sha(randomBytes(1000)), 1000],
      [sha(data), 999],
    ] as const) {
      const w = blobs.writer();
      w.writeBehind(data);
      assert.throws(
        () => w.verify(digest, size),
        (e) => e instanceof HutchError && e.code === 'DIGEST_MISMATCH',
      );
      await assert.rejects(
        w.commitAsync(digest, size),
        (e) => e instanceof HutchError && e.code === 'DIGEST_MISMATCH',
      );
      assert.equal(existsSync(blobs.path(digest)), false);
      assert.deepEqual(readdirSync(blobs.ingestDir), [], 'the temporary file is removed');
    }
  });
});
