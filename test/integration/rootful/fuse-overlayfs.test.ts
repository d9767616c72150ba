/**
 * The fuse-overlayfs driver as root: opaque directories are marked with
 * trusted.overlay.opaque there, which fuse-overlayfs reads as it does the
 * user.* one rootless; a container's changes commit, and rm leaves no
 * daemon and nothing for system check.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const NEEDS_FUSE =
  spawnSync('sh', ['-c', 'command -v fuse-overlayfs && test -e /dev/fuse']).status === 0
    ? false
    : 'needs fuse-overlayfs and /dev/fuse';
const skip = process.getuid!() !== 0 ? 'runs as root only' : NEEDS_REGISTRY || NEEDS_FUSE;

function ok(r: Result): Result {
  assert.equal(r.status, 0, r.stderr);
  return r;
}

/** fuse-overlayfs processes serving this store's mounts. */
function daemons(box: Sandbox): number[] {
  return readdirSync('/proc')
    .map(Number)
    .filter((pid) => {
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'fuse-overlayfs') return false;
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${box.root}/`);
      } catch {
        return false;
      }
    });
}

describe('fuse-overlayfs driver as root', { skip }, () => {
  let box: Sandbox;
  const img = (): string => `${REGISTRY}/multilayer:5`;
  const h = (args: string[]): Result => box.hutch(['--storage-driver', 'fuse-overlayfs', ...args]);
  before(() => {
    box = sandbox({ HUTCH_STORAGE_DRIVER: 'fuse-overlayfs' });
  });
  after(() => box.cleanup());

  it('runs the image as its layers say, commits a container, and rm leaves no daemon', async () => {
    ok(h(['pull', '-q', img()]));
    const seen = ok(
      h([
        'run',
        '--rm',
        '--network',
        'none',
        img(),
        'sh',
        '-c',
        'ls /opaque; test -e /data/remove-me.txt || echo gone',
      ]),
    );
    assert.equal(seen.stdout, 'new.txt\ngone\n');
    ok(
      h([
        'run',
        '--name',
        'c',
        '--network',
        'none',
        img(),
        'sh',
        '-c',
        'rm -rf /opaque; mkdir /opaque; echo y > /opaque/y',
      ]),
    );
    ok(h(['commit', 'c', 'committed:1']));
    const r = ok(h(['run', '--rm', '--network', 'none', 'committed:1', 'ls', '-a', '/opaque']));
    assert.equal(r.stdout, '.\n..\ny\n');
    ok(h(['rm', 'c']));
    const deadline = Date.now() + 3000;
    while (daemons(box).length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(daemons(box), []);
    assert.deepEqual(box.problems(), []);
  });
});
