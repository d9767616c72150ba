/**
 * Volume replication as root on a real btrfs: send uses `btrfs send` (the
 * stream's header says so), receive applies it with `btrfs receive`, full
 * then incremental, and the second store's volume is the same tree;
 * `--portable` gives hutch's own format, which root receives too.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BTRFS_DIR, NEEDS_BTRFS, isSubvolume } from '../../support/btrfs.ts';
import { sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { streamHeader, treeSum } from '../../support/volumes.ts';

const root = process.getuid!() === 0;

function ok(r: Result, what: string): Result {
  assert.equal(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
  return r;
}

describe(
  'volume send and receive as root on btrfs',
  { skip: root ? NEEDS_BTRFS : 'runs as root only' },
  () => {
    let box: Sandbox;
    let peer: Sandbox;
    let portable: Sandbox;
    const vol = (b: Sandbox, name: string): string => join(b.root, 'volumes', name, '_data');
    const send = (args: string[], file: string): void => {
      writeFileSync(
        file,
        ok(box.hutch(['volume', 'send', ...args], { encoding: 'latin1' }), 'send').stdout,
        'latin1',
      );
    };

    before(() => {
      box = sandbox({}, { under: BTRFS_DIR });
      peer = sandbox({}, { under: BTRFS_DIR });
      portable = sandbox({}, { under: BTRFS_DIR });
      ok(box.hutch(['volume', 'create', 'db']), 'create');
      const data = vol(box, 'db');
      ok(
        box.hutch([
          'unshare',
          'sh',
          '-euc',
          `cd ${data}; echo one > a; mkdir d; echo two > d/b; chown 1000:1000 d/b; mkfifo p`,
        ]),
        'fill',
      );
    });
    after(() => {
      box?.cleanup();
      peer?.cleanup();
      portable?.cleanup();
    });

    it('sends with btrfs send and receives with btrfs receive, full then incremental', () => {
      ok(box.hutch(['volume', 'snapshot', 'db', 'a']), 'snapshot a');
      const sumA = treeSum(box, vol(box, 'db'));
      ok(
        box.hutch(['unshare', 'sh', '-euc', `cd ${vol(box, 'db')}; echo three > a; rm -r d; echo four > c`]),
        'change',
      );
      ok(box.hutch(['volume', 'snapshot', 'db', 'b']), 'snapshot b');
      const sumB = treeSum(box, vol(box, 'db'));
      const full = join(box.dir, 'full');
      const incr = join(box.dir, 'incr');
      send(['db@a'], full);
      send(['--from', 'a', 'db@b'], incr);
      assert.equal(streamHeader(full).format, 'btrfs');
      assert.equal(streamHeader(incr).format, 'btrfs');
      ok(peer.hutch(['volume', 'receive', 'db'], { input: readFileSync(full) }), 'receive full');
      assert.equal(treeSum(peer, vol(peer, 'db')), sumA);
      ok(peer.hutch(['volume', 'receive', 'db'], { input: readFileSync(incr) }), 'receive incr');
      assert.equal(treeSum(peer, vol(peer, 'db')), sumB);
      assert.ok(isSubvolume(vol(peer, 'db')));
      assert.ok(isSubvolume(join(peer.root, 'volumes/db/snapshots/b/_data')));
      const r = ok(peer.hutch(['system', 'check', '--format', 'json']), 'check');
      assert.deepEqual((JSON.parse(r.stdout) as { findings: unknown[] }).findings, []);
    });

    it('--portable sends hutch format, which root receives as well', () => {
      const full = join(box.dir, 'pfull');
      const incr = join(box.dir, 'pincr');
      send(['--portable', 'db@a'], full);
      send(['--portable', '--from', 'a', 'db@b'], incr);
      assert.equal(streamHeader(full).format, 'tar');
      ok(portable.hutch(['volume', 'receive', 'db'], { input: readFileSync(full) }), 'receive full');
      ok(portable.hutch(['volume', 'receive', 'db'], { input: readFileSync(incr) }), 'receive incr');
      assert.equal(
        treeSum(portable, vol(portable, 'db')),
        treeSum(box, join(box.root, 'volumes/db/snapshots/b/_data')),
      );
    });
  },
);
