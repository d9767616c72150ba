/**
 * The btrfs driver as root, on the test btrfs mounted without
 * user_subvol_rm_allowed: root may delete subvolumes anyway, so the driver
 * is chosen there, and a container's life leaves no subvolume behind.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BTRFS_STRICT_DIR, NEEDS_STRICT_BTRFS, isSubvolume } from '../../support/btrfs.ts';
import { sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const skip = process.getuid!() !== 0 ? 'runs as root only' : NEEDS_REGISTRY || NEEDS_STRICT_BTRFS;

function ok(r: Result): Result {
  assert.equal(r.status, 0, r.stderr);
  return r;
}

describe('btrfs driver as root', { skip }, () => {
  let box: Sandbox;
  const img = (): string => `${REGISTRY}/busybox:latest`;
  before(() => {
    box = sandbox({}, { under: BTRFS_STRICT_DIR });
  });
  after(() => box.cleanup());

  it('is chosen without user_subvol_rm_allowed, which only users need', () => {
    ok(box.hutch(['pull', '-q', img()]));
    const meta = JSON.parse(readFileSync(join(box.root, 'store.json'), 'utf8')) as { driver?: string };
    assert.equal(meta.driver, 'btrfs');
    const layers = join(box.root, 'storage', 'btrfs', 'layers');
    const names = readdirSync(layers);
    assert.equal(names.length, 1);
    assert.ok(isSubvolume(join(layers, names[0]!)));
  });

  it('runs a container on a snapshot, and rm and rmi delete every subvolume', () => {
    ok(box.hutch(['run', '--name', 'c', '--network', 'none', img(), 'sh', '-c', 'echo hi > /hello']));
    const id = ok(box.hutch(['inspect', '--format', '{{.Id}}', 'c'])).stdout.trim();
    const root = join(box.root, 'storage', 'btrfs', 'containers', id, 'rootfs');
    assert.ok(isSubvolume(root));
    assert.equal(readFileSync(join(root, 'hello'), 'utf8'), 'hi\n');
    ok(box.hutch(['rm', 'c']));
    assert.ok(!existsSync(root));
    ok(box.hutch(['rmi', img()]));
    assert.deepEqual(readdirSync(join(box.root, 'storage', 'btrfs', 'layers')), []);
    assert.deepEqual(box.problems(), []);
  });
});
