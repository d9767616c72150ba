/**
 * The volume store: records and content on disk, name and option checks,
 * crash leftovers, and the copy of an image's content at first use.
 * Ownership across ids needs root; those checks run only as root.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  chmodSync,
  chownSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import {
  VolumeStore,
  mountOf,
  parseVolumeOptions,
  validateVolumeName,
} from '../../../src/runtime/volumes.ts';

const isRoot = process.getuid?.() === 0;
const scratch = mkdtempSync(join(tmpdir(), 'hutch-volumes-'));
/** As a normal user, read-only directories the tests make must be opened up before they can go. */
function openUp(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) openUp(join(dir, e.name));
}
after(() => {
  openUp(scratch);
  rmSync(scratch, { recursive: true, force: true });
});

let n = 0;
function freshStore(): { store: VolumeStore; root: string } {
  const root = join(scratch, `root${n++}`);
  mkdirSync(root);
  return { store: new VolumeStore(root), root };
}

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

describe('VolumeStore', () => {
  let store: VolumeStore;
  let root: string;
  beforeEach(() => ({ store, root } = freshStore()));

  it('creates a volume: a record and an empty 0755 _data', () => {
    const v = store.create({ name: 'data', labels: { app: 'web' }, options: {} });
    assert.equal(v.name, 'data');
    assert.equal(v.driver, 'local');
    assert.equal(v.mountpoint, join(root, 'volumes/data/_data'));
    assert.equal(statSync(v.mountpoint).mode & 0o7777, 0o755);
    assert.deepEqual(readdirSync(v.mountpoint), []);
    const rec = JSON.parse(readFileSync(join(root, 'volumes/data/volume.json'), 'utf8'));
    assert.equal(rec.name, 'data');
    assert.deepEqual(rec.labels, { app: 'web' });
    assert.deepEqual(rec.options, {});
    assert.ok(!Number.isNaN(Date.parse(rec.created)));
    assert.deepEqual(store.get('data'), v);
    assert.ok(store.exists('data'));
    assert.equal(store.mountpoint('data'), v.mountpoint);
  });

  it('names an unnamed volume with 64 random hex digits', () => {
    const a = store.create();
    const b = store.create();
    assert.match(a.name, /^[0-9a-f]{64}$/);
    assert.notEqual(a.name, b.name);
  });

  it('lists volumes by name and removes them', () => {
    store.create({ name: 'b' });
    store.create({ name: 'a' });
    assert.deepEqual(
      store.list().map((v) => v.name),
      ['a', 'b'],
    );
    assert.equal(store.remove('a'), true);
    assert.equal(existsSync(join(root, 'volumes/a')), false);
    assert.deepEqual(
      store.list().map((v) => v.name),
      ['b'],
    );
  });

  it('refuses to remove a missing volume unless forced', () => {
    assert.throws(
      () => store.remove('nope'),
      (e: unknown) => code('NO_SUCH_VOLUME')(e) && (e as { exitCode: number }).exitCode === 1,
    );
    assert.equal(store.remove('nope', { force: true }), false);
    assert.throws(() => store.get('nope'), code('NO_SUCH_VOLUME'));
    assert.throws(() => store.get('../etc'), code('NO_SUCH_VOLUME'));
    assert.throws(() => store.get('a'.repeat(300)), code('NO_SUCH_VOLUME'));
  });

  it('answers the existing volume for the same options, and refuses other options', () => {
    const first = store.create({ name: 'v', options: { type: 'tmpfs', device: 'tmpfs' } });
    const again = store.create({ name: 'v', options: { device: 'tmpfs', type: 'tmpfs' } });
    assert.equal(again.created, first.created);
    assert.throws(() => store.create({ name: 'v' }), code('VOLUME_EXISTS'));
  });

  it('refuses a name held by something that is not a volume', () => {
    mkdirSync(join(root, 'volumes/stray'), { recursive: true });
    assert.deepEqual(store.list(), []);
    assert.throws(() => store.create({ name: 'stray' }), code('VOLUME_EXISTS'));
  });

  it('ignores .tmp-* leftovers of killed commands and cleans them up', () => {
    store.create({ name: 'kept' });
    // A create killed before its rename, a remove killed while deleting, a killed copy-up.
    const half = join(root, 'volumes/.tmp-abc123');
    mkdirSync(join(half, '_data'), { recursive: true });
    writeFileSync(join(half, 'volume.json'), '{"name":".tmp-abc123"}');
    mkdirSync(join(root, 'volumes/.tmp-rm-1-2/_data'), { recursive: true });
    mkdirSync(join(root, 'volumes/kept/.tmp-copyup-x/etc'), { recursive: true });
    assert.deepEqual(
      store.list().map((v) => v.name),
      ['kept'],
    );
    const removed = store.cleanupTemp().sort();
    assert.deepEqual(removed, [
      join(root, 'volumes/.tmp-abc123'),
      join(root, 'volumes/.tmp-rm-1-2'),
      join(root, 'volumes/kept/.tmp-copyup-x'),
    ]);
    assert.deepEqual(readdirSync(join(root, 'volumes')).sort(), ['kept', 'volumes.lock']);
    assert.ok(store.exists('kept'));
  });

  it('skips a volume whose record is unreadable when listing, and names it on get', () => {
    store.create({ name: 'good' });
    store.create({ name: 'bad' });
    writeFileSync(join(root, 'volumes/bad/volume.json'), '{');
    const saved = process.stderr.write;
    process.stderr.write = () => true; // the warning is expected
    try {
      assert.deepEqual(
        store.list().map((v) => v.name),
        ['good'],
      );
    } finally {
      process.stderr.write = saved;
    }
    assert.throws(() => store.get('bad'), code('VOLUME_CORRUPT'));
  });

  it('gives a plain volume to -o o=uid=N,gid=N', { skip: !isRoot && 'needs root to chown' }, () => {
    const v = store.create({ name: 'owned', options: { o: 'uid=1234,gid=5678' } });
    const st = statSync(v.mountpoint);
    assert.equal(st.uid, 1234);
    assert.equal(st.gid, 5678);
    assert.equal(v.uid, 1234);
    assert.equal(v.gid, 5678);
  });

  it('counts content once per inode', () => {
    const v = store.create({ name: 'sized' });
    writeFileSync(join(v.mountpoint, 'a'), 'x'.repeat(100));
    linkSync(join(v.mountpoint, 'a'), join(v.mountpoint, 'b'));
    mkdirSync(join(v.mountpoint, 'd'));
    writeFileSync(join(v.mountpoint, 'd/c'), 'y'.repeat(10));
    assert.equal(store.diskUsage('sized'), 110);
  });
});

describe('volume names', () => {
  it('accepts docker names', () => {
    for (const ok of ['a', 'data', 'my_vol.1-2', '0abc', 'A'.repeat(255)]) validateVolumeName(ok);
  });

  it('refuses others with a clear error', () => {
    for (const bad of ['', '-x', '_x', '.x', 'a/b', '../x', 'a b', 'é', 'volumes.lock', 'a'.repeat(256)]) {
      assert.throws(() => validateVolumeName(bad), code('BAD_VOLUME_NAME'), bad);
    }
    const { store } = freshStore();
    assert.throws(() => store.create({ name: 'a/b' }), /not a valid volume name/);
  });
});

describe('volume options', () => {
  const bad = (options: Record<string, string>, message: RegExp): void => {
    assert.throws(
      () => parseVolumeOptions(options),
      (e: unknown) => code('BAD_VOLUME_OPTION')(e) && message.test((e as Error).message),
      JSON.stringify(options),
    );
  };

  it('parses a plain volume with uid and gid', () => {
    assert.deepEqual(parseVolumeOptions({}), { kind: 'plain' });
    assert.deepEqual(parseVolumeOptions({ o: 'uid=1000,gid=100' }), { kind: 'plain', uid: 1000, gid: 100 });
  });

  it('parses tmpfs and bind volumes', () => {
    assert.deepEqual(
      parseVolumeOptions({ type: 'tmpfs', device: 'tmpfs', o: 'size=100m,uid=1000,mode=1777' }),
      {
        kind: 'tmpfs',
        mountOptions: ['size=100m', 'uid=1000', 'mode=1777'],
      },
    );
    const dir = mkdtempSync(join(scratch, 'dev-'));
    assert.deepEqual(parseVolumeOptions({ type: 'none', o: 'bind,ro', device: dir }), {
      kind: 'bind',
      device: dir,
      recursive: false,
      mountOptions: ['ro'],
    });
    assert.equal(
      (parseVolumeOptions({ type: 'none', o: 'rbind', device: dir }) as { recursive: boolean }).recursive,
      true,
    );
  });

  it('refuses what it does not know, saying what is wrong', () => {
    const file = join(scratch, 'a-file');
    writeFileSync(file, '');
    bad({ foo: 'bar' }, /invalid option "foo"/);
    bad({ size: '10G' }, /quota/);
    bad({ type: 'tmpfs' }, /missing required option "device"/);
    bad({ device: 'tmpfs' }, /missing required option "type"/);
    bad({ o: 'size=10m' }, /plain volume takes only uid= and gid=/);
    bad({ o: 'uid=alice' }, /not a numeric id/);
    bad({ type: 'tmpfs', device: 'tmpfs', o: 'size=lots' }, /invalid tmpfs mount option "size=lots"/);
    bad({ type: 'tmpfs', device: 'tmpfs', o: 'bogus' }, /invalid tmpfs mount option "bogus"/);
    bad({ type: 'none', device: '/', o: 'ro' }, /needs -o o=bind/);
    bad({ type: 'none', device: 'rel/dir', o: 'bind' }, /absolute host path/);
    bad({ type: 'none', device: join(scratch, 'missing'), o: 'bind' }, /no such directory/);
    bad({ type: 'none', device: file, o: 'bind' }, /not a directory/);
    bad({ type: 'none', device: '/', o: 'bind,weird' }, /invalid bind mount option "weird"/);
    bad({ type: 'ext4', device: '/dev/sda1' }, /type=ext4 is not supported/);
  });

  it('refuses bad options before making anything', () => {
    const { store, root } = freshStore();
    assert.throws(() => store.create({ name: 'x', options: { foo: 'bar' } }), code('BAD_VOLUME_OPTION'));
    assert.equal(existsSync(join(root, 'volumes/x')), false);
  });

  it('says how each kind is mounted', () => {
    const { store } = freshStore();
    const plain = store.create({ name: 'p' });
    assert.deepEqual(mountOf(plain), {
      type: 'bind',
      source: plain.mountpoint,
      recursive: false,
      options: [],
    });
    const t = store.create({ name: 't', options: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });
    assert.deepEqual(mountOf(t), { type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
    const dir = mkdtempSync(join(scratch, 'dev-'));
    const b = store.create({ name: 'b', options: { type: 'none', device: dir, o: 'rbind,ro' } });
    assert.deepEqual(mountOf(b), { type: 'bind', source: dir, recursive: true, options: ['ro'] });
  });
});

describe('copy-up at first use', () => {
  /** An image directory with the kinds of entries images have. */
  function imageDir(): string {
    const src = mkdtempSync(join(scratch, 'image-'));
    chmodSync(src, 0o750);
    writeFileSync(join(src, 'conf'), 'setting=1\n');
    chmodSync(join(src, 'conf'), 0o640);
    writeFileSync(join(src, 'run.sh'), '#!/bin/sh\n');
    chmodSync(join(src, 'run.sh'), 0o755);
    mkdirSync(join(src, 'sub/deeper'), { recursive: true });
    chmodSync(join(src, 'sub'), 0o711);
    writeFileSync(join(src, 'sub/deeper/file'), 'deep');
    symlinkSync('/etc/passwd', join(src, 'abs-link'));
    symlinkSync('../conf', join(src, 'sub/rel-link'));
    linkSync(join(src, 'conf'), join(src, 'hardlink'));
    mkdirSync(join(src, 'readonly'));
    writeFileSync(join(src, 'readonly/x'), 'x');
    chmodSync(join(src, 'readonly'), 0o555);
    assert.equal(spawnSync('mkfifo', ['-m', '0620', join(src, 'pipe')]).status, 0);
    return src;
  }

  it('copies modes, links and content once, and marks the volume', () => {
    const { store, root } = freshStore();
    const src = imageDir();
    const v = store.create({ name: 'c' });
    assert.equal(store.copyUpIfFirstUse('c', src), true);
    const d = v.mountpoint;
    assert.equal(statSync(d).mode & 0o7777, 0o750, 'the top takes the image directory mode');
    assert.equal(readFileSync(join(d, 'conf'), 'utf8'), 'setting=1\n');
    assert.equal(statSync(join(d, 'conf')).mode & 0o7777, 0o640);
    assert.equal(statSync(join(d, 'run.sh')).mode & 0o7777, 0o755);
    assert.equal(statSync(join(d, 'sub')).mode & 0o7777, 0o711);
    assert.equal(statSync(join(d, 'readonly')).mode & 0o7777, 0o555);
    assert.equal(readFileSync(join(d, 'sub/deeper/file'), 'utf8'), 'deep');
    assert.ok(lstatSync(join(d, 'abs-link')).isSymbolicLink());
    assert.equal(readlinkSync(join(d, 'abs-link')), '/etc/passwd');
    assert.equal(readlinkSync(join(d, 'sub/rel-link')), '../conf');
    assert.equal(readFileSync(join(d, 'hardlink'), 'utf8'), 'setting=1\n');
    assert.ok(lstatSync(join(d, 'pipe')).isFIFO());
    assert.equal(lstatSync(join(d, 'pipe')).mode & 0o7777, 0o620);
    const drift = statSync(join(d, 'conf')).mtimeMs - statSync(join(src, 'conf')).mtimeMs;
    assert.ok(Math.abs(drift) < 0.01, `mtime drifted by ${drift} ms`);
    assert.equal(JSON.parse(readFileSync(join(root, 'volumes/c/volume.json'), 'utf8')).copiedUp, true);
    assert.equal(store.get('c').copiedUp, true);
    // No leftovers beside the content.
    assert.deepEqual(readdirSync(join(root, 'volumes/c')).sort(), ['_data', 'volume.json']);

    // Emptied and mounted again: nothing comes back.
    chmodSync(join(d, 'readonly'), 0o755);
    for (const e of readdirSync(d)) rmSync(join(d, e), { recursive: true });
    assert.equal(store.copyUpIfFirstUse('c', src), false);
    assert.deepEqual(readdirSync(d), []);
  });

  it('keeps owners', { skip: !isRoot && 'needs root to chown' }, () => {
    const { store } = freshStore();
    const src = imageDir();
    chownSync(join(src, 'conf'), 1000, 1001);
    chownSync(join(src, 'sub'), 33, 33);
    chownSync(src, 70, 70);
    chmodSync(join(src, 'run.sh'), 0o4755);
    chownSync(join(src, 'run.sh'), 5, 5);
    chmodSync(join(src, 'run.sh'), 0o4755);
    const v = store.create({ name: 'o' });
    store.copyUpIfFirstUse('o', src);
    assert.equal(statSync(join(v.mountpoint, 'conf')).uid, 1000);
    assert.equal(statSync(join(v.mountpoint, 'conf')).gid, 1001);
    assert.equal(statSync(join(v.mountpoint, 'sub')).uid, 33);
    assert.equal(statSync(v.mountpoint).uid, 70);
    assert.equal(
      statSync(join(v.mountpoint, 'run.sh')).mode & 0o7777,
      0o4755,
      'set-id bits survive the chown',
    );
    // With -o uid/gid the volume's top keeps the owner that was asked for.
    const w = store.create({ name: 'w', options: { o: 'uid=1234,gid=1234' } });
    store.copyUpIfFirstUse('w', src);
    assert.equal(statSync(w.mountpoint).uid, 1234);
    assert.equal(statSync(join(w.mountpoint, 'conf')).uid, 1000);
  });

  it('copies nothing into a volume that has content, but still marks it', () => {
    const { store } = freshStore();
    const v = store.create({ name: 'full' });
    writeFileSync(join(v.mountpoint, 'mine'), 'keep');
    assert.equal(store.copyUpIfFirstUse('full', imageDir()), false);
    assert.deepEqual(readdirSync(v.mountpoint), ['mine']);
    assert.equal(store.get('full').copiedUp, true);
  });

  it('never follows a link at the source, and marks the volume when there is no source', () => {
    const { store } = freshStore();
    const src = imageDir();
    const link = join(scratch, `link-${n++}`);
    symlinkSync(src, link);
    const v = store.create({ name: 'l' });
    assert.equal(store.copyUpIfFirstUse('l', link), false);
    assert.deepEqual(readdirSync(v.mountpoint), []);
    store.create({ name: 'none' });
    assert.equal(store.copyUpIfFirstUse('none', undefined), false);
    assert.equal(store.get('none').copiedUp, true);
    assert.equal(store.copyUpIfFirstUse('none', src), false);
  });

  it('copies into a bind volume in place, and never into a tmpfs one', () => {
    const { store } = freshStore();
    const src = imageDir();
    const dev = mkdtempSync(join(scratch, 'dev-'));
    store.create({ name: 'b', options: { type: 'none', o: 'bind', device: dev } });
    assert.equal(store.copyUpIfFirstUse('b', src), true);
    assert.equal(readFileSync(join(dev, 'conf'), 'utf8'), 'setting=1\n');
    store.create({ name: 't', options: { type: 'tmpfs', device: 'tmpfs' } });
    assert.equal(store.copyUpIfFirstUse('t', src), false);
    assert.equal(store.get('t').copiedUp, undefined);
  });

  it('refuses a missing volume', () => {
    const { store } = freshStore();
    assert.throws(() => store.copyUpIfFirstUse('ghost', undefined), code('NO_SUCH_VOLUME'));
  });
});
