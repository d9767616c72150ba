/**
 * The diff walker: an overlay upper directory against its lower layers
 * (whiteouts, opaque directories, lower layers that hide each other), and a
 * vfs root against its image tree; then the changes as a layer tar, applied
 * back with the extractor, must give the container's tree.
 *
 * Overlay whiteouts are 0:0 character devices, and the layer's markers are
 * owned by root: the overlay tests need root (the runner's unit group runs
 * as root; elsewhere they skip).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { changes, changesTar, layerPacker, sortedForDisplay } from '../../../../src/storage/archive/diff.ts';
import type { Change } from '../../../../src/storage/archive/diff.ts';
import { applyLayer } from '../../../../src/storage/extract/index.ts';
import { sys } from '../../../../src/sys/native.ts';
import { HutchError } from '../../../../src/util/errors.ts';
import { tempDir } from '../../../support/temp.ts';

const S_IFCHR = 0o020000;

function whiteout(path: string): void {
  sys().mknod(path, S_IFCHR, 0, 0);
}

function canWhiteout(): boolean {
  // The layers written here are owned by root (whiteouts and markers are 0:0), as in the store.
  if (process.getuid!() !== 0) return false;
  const d = tempDir();
  try {
    whiteout(join(d, 'w'));
    sys().lsetxattr(d, 'user.overlay.opaque', Buffer.from('y'));
    return true;
  } catch {
    return false;
  }
}

function files(root: string, spec: Record<string, string | null>): void {
  for (const [rel, content] of Object.entries(spec)) {
    const p = join(root, rel);
    if (rel.endsWith('/')) mkdirSync(p, { recursive: true });
    else {
      mkdirSync(join(p, '..'), { recursive: true });
      if (content === null) whiteout(p);
      else writeFileSync(p, content);
    }
  }
}

function lines(list: readonly Change[]): string[] {
  return sortedForDisplay(list).map((c) => `${c.kind} /${c.path}`);
}

function tarOf(list: readonly Change[]): { tar: Buffer; entries: number } {
  const packer = layerPacker();
  const tar = Buffer.concat([...changesTar(list, packer)]);
  return { tar, entries: packer.entries };
}

async function apply(tar: Buffer, dest: string, mode: 'apply' | 'overlay'): Promise<void> {
  await applyLayer(Readable.from([tar]), dest, {
    whiteouts: mode,
    userxattr: true,
    canMknod: false,
    maxUid: 2 ** 32 - 2,
    maxGid: 2 ** 32 - 2,
  });
}

function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, r));
      let what = `${(st.mode & 0o177777).toString(8)}`;
      if (st.isFile()) what += ` ${readFileSync(join(root, r), 'utf8')} t=${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isSymbolicLink()) what += ` -> ${readlinkSync(join(root, r))}`;
      out[r] = what;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

describe('changes: overlay', { skip: canWhiteout() ? false : 'needs root to make whiteouts' }, () => {
  function scene(): { upper: string; lowers: string[]; merged: string } {
    const base = join(tempDir(), 'l1');
    const top = join(tempDir(), 'l2');
    const upper = join(tempDir(), 'upper');
    files(base, {
      'etc/passwd': 'root\n',
      'etc/group': 'root\n',
      'opt/a': 'a',
      'opt/b/deep': 'b',
      gone: 'g',
      'keep/x': 'x',
      'hidden/old': 'o',
    });
    files(top, {
      'etc/group': null, // deleted by the image's own top layer
      'new-in-l2': 'n',
      'hidden/': '',
    });
    sys().lsetxattr(join(top, 'hidden'), 'user.overlay.opaque', Buffer.from('y'));
    files(upper, {
      'etc/passwd': 'root\nme\n',
      'etc/new': 'new',
      'etc/group': null, // a whiteout over nothing: no change
      gone: null,
      'opt/c': 'c',
      'added/sub/f': 'f',
      'hidden/again': 'h',
    });
    sys().lsetxattr(join(upper, 'opt'), 'user.overlay.opaque', Buffer.from('y'));
    // What a vfs copy of the image looks like (the lower layers merged).
    const merged = join(tempDir(), 'merged');
    files(merged, {
      'etc/passwd': 'root\n',
      'opt/a': 'a',
      'opt/b/deep': 'b',
      gone: 'g',
      'keep/x': 'x',
      'new-in-l2': 'n',
      'hidden/': '',
    });
    return { upper, lowers: [top, base], merged };
  }

  it('lists added, changed and deleted paths as docker diff does', () => {
    const { upper, lowers } = scene();
    const list = changes({ driver: 'overlay', upper, lowers, userxattr: true });
    assert.deepEqual(lines(list), [
      'A /added',
      'A /added/sub',
      'A /added/sub/f',
      'C /etc',
      'A /etc/new',
      'C /etc/passwd',
      'D /gone',
      'C /hidden',
      'A /hidden/again',
      'C /opt',
      'D /opt/a',
      'D /opt/b',
      'A /opt/c',
    ]);
  });

  it('writes a layer with whiteouts and an opaque marker that the extractor turns back into the container', async () => {
    const { upper, lowers, merged } = scene();
    const list = changes({ driver: 'overlay', upper, lowers, userxattr: true });
    const { tar, entries } = tarOf(list);
    assert.ok(entries > 0);
    // As an overlay layer: whiteouts and the opaque mark, as the kernel made them.
    const layer = tempDir();
    await apply(tar, layer, 'overlay');
    assert.ok(lstatSync(join(layer, 'gone')).isCharacterDevice());
    assert.deepEqual(sys().lgetxattr(join(layer, 'opt'), 'user.overlay.opaque'), Buffer.from('y'));
    assert.equal(existsSync(join(layer, 'opt/a')), false);
    // Applied to a full copy of the image (vfs), it gives the container's view.
    await apply(tar, merged, 'apply');
    assert.deepEqual(Object.keys(tree(merged)), [
      'added',
      'added/sub',
      'added/sub/f',
      'etc',
      'etc/new',
      'etc/passwd',
      'hidden',
      'hidden/again',
      'keep',
      'keep/x',
      'new-in-l2',
      'opt',
      'opt/c',
    ]);
    assert.equal(readFileSync(join(merged, 'etc/passwd'), 'utf8'), 'root\nme\n');
  });

  it('has no changes for a container never started (no upper directory)', () => {
    const list = changes({
      driver: 'overlay',
      upper: join(tempDir(), 'missing'),
      lowers: [],
      userxattr: true,
    });
    assert.deepEqual(list, []);
    const { entries, tar } = tarOf(list);
    assert.equal(entries, 0);
    assert.equal(tar.length, 1024);
  });

  it('treats a name in a layer under a lower non-directory as absent', () => {
    const base = join(tempDir(), 'l1');
    const top = join(tempDir(), 'l2');
    const upper = join(tempDir(), 'u');
    files(base, { 'x/inner': 'i' });
    files(top, { x: 'now a file' });
    files(upper, { 'x/inner': 'again' });
    sys().lsetxattr(join(upper, 'x'), 'user.overlay.opaque', Buffer.from('y'));
    assert.deepEqual(lines(changes({ driver: 'overlay', upper, lowers: [top, base], userxattr: true })), [
      'C /x',
      'A /x/inner',
    ]);
  });
});

describe('changes: vfs', () => {
  it('compares the container tree with the image tree, and the layer recreates it', async () => {
    const image = join(tempDir(), 'image');
    files(image, {
      'bin/sh': 'shell',
      'etc/passwd': 'root\n',
      'etc/motd': 'hello',
      'etc/touched': 'same',
      'var/cache/a': 'a',
      'var/cache/b': 'b',
      'usr/lib/file-then-dir': 'f',
      'usr/share/doc/x': 'x',
    });
    symlinkSync('/bin/sh', join(image, 'bin/link'));
    const root = join(tempDir(), 'root');
    assert.equal(spawnSync('cp', ['-a', image, root]).status, 0);
    const copy = join(tempDir(), 'copy');
    assert.equal(spawnSync('cp', ['-a', image, copy]).status, 0);

    writeFileSync(join(root, 'etc/passwd'), 'root\nuser\n');
    chmodSync(join(root, 'etc/motd'), 0o600);
    utimesSync(join(root, 'etc/touched'), 1_700_000_000, 1_700_000_000);
    rmSync(join(root, 'var/cache'), { recursive: true });
    unlinkSync(join(root, 'usr/lib/file-then-dir'));
    mkdirSync(join(root, 'usr/lib/file-then-dir'));
    writeFileSync(join(root, 'usr/lib/file-then-dir/inside'), 'i');
    unlinkSync(join(root, 'bin/link'));
    symlinkSync('/bin/other', join(root, 'bin/link'));
    files(root, { 'new/dir/file': 'n' });

    const list = changes({ driver: 'vfs', root, base: image });
    assert.deepEqual(lines(list), [
      'C /bin',
      'C /bin/link',
      'C /etc',
      'C /etc/motd',
      'C /etc/passwd',
      'C /etc/touched',
      'A /new',
      'A /new/dir',
      'A /new/dir/file',
      'C /usr',
      'C /usr/lib',
      'C /usr/lib/file-then-dir',
      'A /usr/lib/file-then-dir/inside',
      'C /var',
      'D /var/cache',
    ]);
    const { tar } = tarOf(list);
    await apply(tar, copy, 'apply');
    assert.deepEqual(tree(copy), tree(root));
  });

  it('lists everything as added when the image has no layers, nothing when the root is missing', () => {
    const root = join(tempDir(), 'root');
    files(root, { 'a/b': 'x' });
    assert.deepEqual(lines(changes({ driver: 'vfs', root, base: undefined })), ['A /a', 'A /a/b']);
    assert.deepEqual(changes({ driver: 'vfs', root: join(tempDir(), 'none'), base: root }), []);
  });

  it('refuses a file named like a whiteout in a layer', () => {
    const image = join(tempDir(), 'image');
    files(image, { keep: 'k' });
    const root = join(tempDir(), 'root');
    files(root, { keep: 'k', '.wh.keep': '' });
    utimesSync(
      join(root, 'keep'),
      lstatSync(join(image, 'keep')).atime,
      lstatSync(join(image, 'keep')).mtime,
    );
    const list = changes({ driver: 'vfs', root, base: image });
    assert.throws(
      () => tarOf(list),
      (e: unknown) => e instanceof HutchError && e.code === 'WHITEOUT_NAME',
    );
  });
});
