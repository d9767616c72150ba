/**
 * `hutch system df` as root on the test btrfs: root may read the extent
 * tree, so with compsize installed the compression ratio is added to the
 * shared bytes; a file written compressed shows a ratio above 1.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BTRFS_DIR, NEEDS_BTRFS } from '../../support/btrfs.ts';
import { sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const root = process.getuid!() === 0;
const compsize = ['/usr/sbin/compsize', '/usr/bin/compsize'].some((p) => {
  try {
    process.getBuiltinModule('node:fs').accessSync(p);
    return true;
  } catch {
    return false;
  }
});

function ok(r: Result, what: string): Result {
  assert.equal(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
  return r;
}

describe(
  'system df as root on btrfs',
  {
    skip: !root
      ? 'runs as root only'
      : NEEDS_BTRFS || NEEDS_REGISTRY || (compsize ? false : 'needs compsize (Debian: btrfs-compsize)'),
  },
  () => {
    let box: Sandbox;
    before(() => {
      box = sandbox({ HUTCH_STORAGE_DRIVER: 'btrfs' }, { under: BTRFS_DIR });
    });
    after(() => box?.cleanup());

    it('adds the compression ratio compsize reads', () => {
      ok(box.hutch(['pull', '-q', `${REGISTRY}/busybox:latest`]), 'pull');
      ok(box.hutch(['volume', 'create', 'text']), 'volume create');
      // compress-force through the property: zstd turns a repeated text into a fraction of its size.
      const data = `${box.root}/volumes/text/_data`;
      ok(box.hutch(['unshare', 'btrfs', 'property', 'set', data, 'compression', 'zstd']), 'property');
      ok(
        box.hutch(['unshare', 'sh', '-c', `yes hutch | head -c 8000000 > ${data}/t && sync -f ${data}`]),
        'write',
      );
      const text = ok(box.hutch(['system', 'df']), 'df').stdout;
      assert.match(text, /\nFilesystem \(btrfs\): /);
      const m = /Compression \(compsize\): ([\d.]+)x/.exec(text);
      assert.ok(m, text);
      assert.ok(Number(m[1]) > 1.5, `a compressed text file, ratio ${m[1]}`);
    });
  },
);
