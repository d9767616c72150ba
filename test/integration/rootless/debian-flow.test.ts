/**
 * Issue 3's acceptance walk with the Debian test image (one 89 MB layer):
 * pull by tag and by digest, list, inspect, history, tag, push to a new
 * name, save, remove, load, and the same image ID comes back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sandbox } from '../../support/hutch.ts';
import type { Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY, pushed } from '../../support/images.ts';

describe('the Debian image, end to end', { skip: NEEDS_REGISTRY }, () => {
  let box: Sandbox;
  const name = (): string => `${REGISTRY}/debian:bookworm-minbase`;
  const copy = `${REGISTRY}/flow-${process.pid}/debian:copy`;
  before(() => {
    box = sandbox();
  });
  after(() => box.cleanup());

  it('pulls by tag and by digest to the same image', () => {
    const want = pushed('debian', 'bookworm-minbase');
    const byTag = box.hutch(['pull', '-q', name()]);
    assert.equal(byTag.status, 0, byTag.stderr);
    assert.equal(byTag.stdout.trim(), want.configDigest);
    // debootstrap makes /dev/console and the like, which no user namespace may create: said once for the layer.
    assert.match(byTag.stderr, /WARN.*layer [0-9a-f]{12}: skipped \d+ device nodes \(such as \/dev\//);
    assert.equal(byTag.stderr.trim().split('\n').length, 1, byTag.stderr);
    const byDigest = box.hutch(['pull', '-q', `${REGISTRY}/debian@${want.manifestDigest}`]);
    assert.equal(byDigest.status, 0, byDigest.stderr);
    assert.equal(byDigest.stdout.trim(), want.configDigest);
  });

  it('lists, inspects and shows history', () => {
    assert.match(box.hutch(['images']).stdout, /debian +bookworm-minbase/);
    const size = Number(box.hutch(['image', 'inspect', '--format', '{{.Size}}', name()]).stdout.trim());
    assert.ok(size > 100e6, `unpacked size ${size}`);
    assert.equal(box.hutch(['history', '-q', name()]).status, 0);
  });

  it('tags, pushes to a new name, saves, removes, loads: the same ID', () => {
    const id = pushed('debian', 'bookworm-minbase').configDigest;
    assert.equal(box.hutch(['tag', name(), copy]).status, 0);
    const push = box.hutch(['push', copy]);
    assert.equal(push.status, 0, push.stderr);
    const archive = `${box.dir}/debian.tar`;
    assert.equal(box.hutch(['save', '-o', archive, copy]).status, 0);
    assert.equal(box.hutch(['rmi', '-f', id]).status, 0);
    assert.equal(box.hutch(['images', '-q']).stdout.trim(), '');
    const load = box.hutch(['load', '-i', archive]);
    assert.equal(load.status, 0, load.stderr);
    assert.match(load.stdout, new RegExp(`Loaded image: ${copy.replace(/[.]/g, '\\.')}`));
    assert.equal(box.hutch(['image', 'inspect', '--format', '{{.Id}}', copy]).stdout.trim(), id);
    // And what was pushed comes back from the registry as the same image too.
    assert.equal(box.hutch(['rmi', '-f', id]).status, 0);
    const again = box.hutch(['pull', '-q', copy]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout.trim(), id);
    const check = box.hutch(['system', 'check', '--format', 'json']);
    assert.equal(check.status, 0, check.stdout);
  });
});
