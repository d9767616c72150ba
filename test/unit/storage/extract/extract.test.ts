/**
 * The layer extractor on ordinary layers: entry types, metadata, PAX and GNU
 * extensions, replacement rules, whiteouts in both modes, streaming. Runs as
 * any user: entries are owned by the invoking user's ids (ownership across
 * ids is tested in test/integration/root{ful,less}/extract.test.ts).
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { sys } from '../../../../src/sys/native.ts';
import { BEHIND_BYTES, BEHIND_MIN } from '../../../../src/storage/extract/apply.ts';
import { applyLayer } from '../../../../src/storage/extract/index.ts';
import type { ExtractOptions } from '../../../../src/storage/extract/index.ts';
import {
  END,
  extractOptions,
  fileEntry,
  gnuLong,
  header,
  packTar,
  pax,
  streamOf,
  tarOf,
} from './tar-build.ts';
import { tempDir } from '../../../support/temp.ts';

const ME = { uid: process.getuid!(), gid: process.getgid!() };
const T0 = 1_600_000_000;

async function extract(tar: Buffer, over: Partial<ExtractOptions> = {}, dest = tempDir(), chunk?: number) {
  const result = await applyLayer(streamOf(tar, chunk), dest, extractOptions(over));
  return { dest, result };
}

const own = { uid: ME.uid, gid: ME.gid };

describe('applyLayer: ordinary layers', () => {
  it('extracts files, directories, symlinks and hardlinks with their modes and times', async () => {
    const tar = await packTar([
      { name: 'etc/', type: 'directory', mode: 0o750, mtime: new Date(T0 * 1000), ...own },
      { name: 'etc/hostname', body: 'box\n', mode: 0o640, mtime: new Date((T0 + 5) * 1000), ...own },
      { name: 'usr/bin/tool', body: '#!/bin/sh\n', mode: 0o4755, ...own },
      { name: 'usr/bin/group-tool', body: 'x', mode: 0o2711, ...own },
      { name: 'tmp/', type: 'directory', mode: 0o1777, ...own },
      { name: 'bin', type: 'symlink', linkname: 'usr/bin', mtime: new Date((T0 + 9) * 1000), ...own },
      { name: 'usr/bin/tool-again', type: 'link', linkname: 'usr/bin/tool', ...own },
      { name: 'empty', body: '', mode: 0o600, ...own },
    ]);
    const { dest, result } = await extract(tar);
    assert.equal(result.size, tar.length);
    assert.deepEqual(result.warnings, []);
    assert.equal(readFileSync(join(dest, 'etc/hostname'), 'utf8'), 'box\n');
    assert.equal(statSync(join(dest, 'etc/hostname')).mode & 0o7777, 0o640);
    assert.equal(statSync(join(dest, 'etc/hostname')).mtimeMs, (T0 + 5) * 1000);
    // The directory's mtime survives the file written into it afterwards.
    assert.equal(statSync(join(dest, 'etc')).mtimeMs, T0 * 1000);
    assert.equal(statSync(join(dest, 'etc')).mode & 0o7777, 0o750);
    assert.equal(statSync(join(dest, 'usr/bin/tool')).mode & 0o7777, 0o4755);
    assert.equal(statSync(join(dest, 'usr/bin/group-tool')).mode & 0o7777, 0o2711);
    assert.equal(statSync(join(dest, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(readlinkSync(join(dest, 'bin')), 'usr/bin');
    assert.equal(lstatSync(join(dest, 'bin')).mtimeMs, (T0 + 9) * 1000);
    assert.equal(statSync(join(dest, 'usr/bin/tool-again')).ino, statSync(join(dest, 'usr/bin/tool')).ino);
    assert.equal(statSync(join(dest, 'empty')).size, 0);
    // Parents the tar does not list are made 0755.
    assert.equal(statSync(join(dest, 'usr')).mode & 0o7777, 0o755);
    assert.equal(statSync(join(dest, 'usr/bin/tool')).uid, ME.uid);
  });

  it('reads the same tree whatever the stream chunking', async () => {
    const big = Buffer.alloc(9000, 'abcdefg');
    const tar = await packTar([
      { name: 'a/', type: 'directory', ...own },
      { name: 'a/big', body: big, ...own },
      { name: 'a/' + 'long-name-'.repeat(20), body: 'long', ...own },
      { name: 'a/link', type: 'symlink', linkname: 'x'.repeat(150), ...own },
      { name: 'a/small', body: 'x', ...own },
    ]);
    for (const chunk of [1, 7, 511, 512, 513, 4096]) {
      const { dest, result } = await extract(tar, {}, tempDir(), chunk);
      assert.equal(result.size, tar.length, `chunk ${chunk}`);
      assert.deepEqual(readFileSync(join(dest, 'a/big')), big, `chunk ${chunk}`);
      assert.equal(readFileSync(join(dest, 'a/' + 'long-name-'.repeat(20)), 'utf8'), 'long');
      assert.equal(readlinkSync(join(dest, 'a/link')), 'x'.repeat(150));
      assert.equal(readFileSync(join(dest, 'a/small'), 'utf8'), 'x');
    }
  });

  it('takes GNU long names and long link names', async () => {
    const name = 'd/' + 'n'.repeat(180);
    const target = '/' + 't'.repeat(200);
    const tar = tarOf(
      gnuLong(name),
      fileEntry('ignored-short-name', 'gnu', own),
      gnuLong(target, 'K'),
      gnuLong('d/sym'),
      header({ name: 'short', type: '2', linkname: 'short-target', ...own }),
    );
    const { dest } = await extract(tar);
    assert.equal(readFileSync(join(dest, name), 'utf8'), 'gnu');
    assert.equal(readlinkSync(join(dest, 'd/sym')), target);
    assert.equal(existsSync(join(dest, 'ignored-short-name')), false);
  });

  it('applies PAX path, size, mtime and xattrs (SCHILY binary, LIBARCHIVE base64)', async () => {
    const binary = Buffer.from([0x01, 0x00, 0x80, 0xff, 0x7f, 0x00, 0xc3]);
    const tar = tarOf(
      pax([
        ['path', 'pax/ünïcode-' + 'p'.repeat(120)],
        ['mtime', `${T0 + 1}.5`],
        ['SCHILY.xattr.user.bin', binary],
      ]),
      fileEntry('short', 'pax body', own),
      pax([['LIBARCHIVE.xattr.user.with%20space', Buffer.from('hello').toString('base64')]]),
      fileEntry('lib', 'la', own),
    );
    const { dest } = await extract(tar);
    const f = join(dest, 'pax/ünïcode-' + 'p'.repeat(120));
    assert.equal(readFileSync(f, 'utf8'), 'pax body');
    assert.equal(statSync(f).mtimeMs, (T0 + 1.5) * 1000);
    assert.deepEqual(sys().lgetxattr(f, 'user.bin'), binary);
    assert.deepEqual(sys().lgetxattr(join(dest, 'lib'), 'user.with space'), Buffer.from('hello'));
  });

  it('streams file bodies to disk as they arrive, never far behind', async () => {
    const dest = tempDir();
    const piece = Buffer.alloc(1 << 20, 7);
    const pieces = (BEHIND_BYTES >> 20) + 16;
    const seen: number[] = [];
    async function* source(): AsyncGenerator<Buffer> {
      yield header({ name: 'big', size: piece.length * pieces, ...own });
      for (let i = 0; i < pieces; i++) {
        if (i > 1) seen.push(statSync(join(dest, 'big')).size);
        yield piece;
      }
      yield END;
    }
    const result = await applyLayer(Readable.from(source()), dest, extractOptions());
    assert.equal(result.size, 512 + piece.length * pieces + 1024);
    assert.equal(statSync(join(dest, 'big')).size, piece.length * pieces);
    // Before piece i is handed over, all but the last BEHIND_BYTES of the pieces before it are in the file.
    seen.forEach((size, k) =>
      assert.ok(size >= (k + 2) * piece.length - BEHIND_BYTES, `after ${k + 2} pieces: ${size}`),
    );
  });

  it('finishes large files written behind: content, mode, owner and times as the tar says', async () => {
    const body = (n: number): Buffer => Buffer.alloc(BEHIND_MIN * 3 + n, String.fromCharCode(97 + n));
    const entries = [0, 1, 2, 3].map((n) => ({
      name: `bin/tool${n}`,
      body: body(n),
      mode: n === 0 ? 0o4755 : 0o640,
      mtime: new Date((T0 + n) * 1000),
      ...own,
    }));
    const tar = await packTar([
      { name: 'bin/', type: 'directory', mode: 0o750, mtime: new Date(T0 * 1000), ...own },
      ...entries,
      { name: 'bin/tool-link', type: 'link', linkname: 'bin/tool1', ...own },
    ]);
    for (const chunk of [4096, 1 << 20]) {
      const { dest, result } = await extract(tar, {}, tempDir(), chunk);
      assert.equal(result.size, tar.length);
      for (const [n, e] of entries.entries()) {
        const f = join(dest, e.name);
        assert.deepEqual(readFileSync(f), body(n), `${e.name}, chunks of ${chunk}`);
        assert.equal(statSync(f).mode & 0o7777, e.mode, e.name);
        assert.equal(statSync(f).mtimeMs, e.mtime.getTime(), e.name);
        assert.equal(statSync(f).uid, ME.uid);
      }
      assert.equal(statSync(join(dest, 'bin/tool-link')).ino, statSync(join(dest, 'bin/tool1')).ino);
      assert.equal(statSync(join(dest, 'bin')).mtimeMs, T0 * 1000);
      assert.equal(statSync(join(dest, 'bin')).mode & 0o7777, 0o750);
    }
  });

  it('a large file replaced while it is written behind: the later entry wins, nothing leaks', async () => {
    const openFds = (): number => readdirSync('/proc/self/fd').length;
    const fdsBefore = openFds();
    const tar = await packTar([
      { name: 'data/big', body: Buffer.alloc(BEHIND_MIN * 8, 1), ...own },
      { name: 'data/big', type: 'symlink', linkname: '/etc/passwd', ...own },
      { name: 'data', type: 'symlink', linkname: '/', ...own },
      { name: 'other', body: Buffer.alloc(BEHIND_MIN * 2, 2), mode: 0o600, ...own },
    ]);
    const { dest } = await extract(tar, {}, tempDir(), 64 << 10);
    assert.equal(readlinkSync(join(dest, 'data')), '/');
    assert.equal(statSync(join(dest, 'other')).mode & 0o7777, 0o600);
    assert.equal(openFds(), fdsBefore, 'every file descriptor is closed');
  });

  it('a stream cut short in a large file fails, and closes what it wrote behind', async () => {
    const openFds = (): number => readdirSync('/proc/self/fd').length;
    const fdsBefore = openFds();
    const tar = await packTar([
      { name: 'first', body: Buffer.alloc(BEHIND_MIN * 4, 1), ...own },
      { name: 'second', body: Buffer.alloc(BEHIND_MIN * 4, 2), ...own },
    ]);
    await assert.rejects(
      extract(tar.subarray(0, tar.length - 1024 - BEHIND_MIN), {}, tempDir(), 64 << 10),
      (e: Error & { code?: string }) => e.code === 'LAYER_TRUNCATED',
    );
    // Writes in flight end on the thread pool; their descriptors close then.
    for (let i = 0; i < 100 && openFds() !== fdsBefore; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(openFds(), fdsBefore, 'every file descriptor is closed');
  });

  it('counts the whole stream, trailing bytes after the end blocks included', async () => {
    const tar = Buffer.concat([tarOf(fileEntry('f', 'x', own)), Buffer.alloc(4096)]);
    const { result } = await extract(tar);
    assert.equal(result.size, tar.length);
  });

  it('accepts a stream that ends at an entry boundary without end blocks', async () => {
    const { dest } = await extract(fileEntry('f', 'x', own));
    assert.equal(readFileSync(join(dest, 'f'), 'utf8'), 'x');
  });

  it('leaves the root entry (./) alone and strips ./ prefixes', async () => {
    const dest = tempDir();
    const before = statSync(dest).mode & 0o7777;
    await extract(
      tarOf(header({ name: './', type: '5', mode: 0o700, ...own }), fileEntry('./a/./b', 'x', own)),
      {},
      dest,
    );
    assert.equal(statSync(dest).mode & 0o7777, before);
    assert.equal(readFileSync(join(dest, 'a/b'), 'utf8'), 'x');
  });
});

describe('applyLayer: owners', () => {
  // Another group this process may give files: any as root, else a supplementary one.
  const other = ME.uid === 0 ? ME.gid + 1000 : (process.getgroups?.() ?? []).find((g) => g !== ME.gid);
  const needsOtherGroup = {
    skip: other === undefined && 'needs root or a supplementary group to make a directory of another group',
  };

  it(
    'a setgid directory of the tree below does not pass its group to entries that name ours',
    needsOtherGroup,
    async () => {
      const dest = tempDir();
      mkdirSync(join(dest, 'shared'));
      chownSync(join(dest, 'shared'), ME.uid, other!);
      chmodSync(join(dest, 'shared'), 0o2775);
      await extract(
        tarOf(
          // Made first, so the extractor has seen a new inode get the owner it expects.
          fileEntry('first', 'x', own),
          fileEntry('shared/file', 'x', own),
          header({ name: 'shared/link', type: '2', linkname: 'file', ...own }),
          header({ name: 'shared/dir/', type: '5', ...own }),
          fileEntry('shared/big', Buffer.alloc(BEHIND_MIN * 2, 1), own),
          fileEntry('shared/theirs', 'y', { uid: ME.uid, gid: other! }),
        ),
        {},
        dest,
      );
      for (const name of ['file', 'link', 'dir', 'big']) {
        assert.equal(
          lstatSync(join(dest, 'shared', name)).gid,
          ME.gid,
          `shared/${name} keeps the group its entry names`,
        );
      }
      assert.equal(lstatSync(join(dest, 'shared/theirs')).gid, other);
    },
  );

  it("a directory merged into one of the tree below takes the entry's owner", needsOtherGroup, async () => {
    const dest = tempDir();
    mkdirSync(join(dest, 'lower'));
    chownSync(join(dest, 'lower'), ME.uid, other!);
    await extract(
      tarOf(fileEntry('first', 'x', own), header({ name: 'lower/', type: '5', mode: 0o750, ...own })),
      {},
      dest,
    );
    assert.equal(statSync(join(dest, 'lower')).gid, ME.gid);
    assert.equal(statSync(join(dest, 'lower')).mode & 0o7777, 0o750);
  });
});

describe('applyLayer: entries replacing others (docker rules)', () => {
  it('a file replaces a directory, a directory replaces a file, directories merge', async () => {
    const dest = tempDir();
    mkdirSync(join(dest, 'was-dir/sub'), { recursive: true });
    writeFileSync(join(dest, 'was-dir/sub/f'), 'old');
    writeFileSync(join(dest, 'was-file'), 'old');
    mkdirSync(join(dest, 'merge'));
    writeFileSync(join(dest, 'merge/lower'), 'lower');
    await extract(
      tarOf(
        fileEntry('was-dir', 'now a file', own),
        header({ name: 'was-file/', type: '5', mode: 0o711, ...own }),
        header({ name: 'merge/', type: '5', mode: 0o700, ...own }),
        fileEntry('merge/upper', 'upper', own),
      ),
      {},
      dest,
    );
    assert.equal(readFileSync(join(dest, 'was-dir'), 'utf8'), 'now a file');
    assert.ok(statSync(join(dest, 'was-file')).isDirectory());
    assert.equal(statSync(join(dest, 'was-file')).mode & 0o7777, 0o711);
    assert.deepEqual(readdirSync(join(dest, 'merge')).sort(), ['lower', 'upper']);
    assert.equal(statSync(join(dest, 'merge')).mode & 0o7777, 0o700);
  });

  it('a file over an existing file replaces the inode (other hardlinks keep the old content)', async () => {
    const dest = tempDir();
    writeFileSync(join(dest, 'a'), 'old');
    await extract(tarOf(fileEntry('a', 'new', own)), {}, dest);
    assert.equal(readFileSync(join(dest, 'a'), 'utf8'), 'new');
  });

  it('a hardlink may point at a file of the tree below (apply mode)', async () => {
    const dest = tempDir();
    writeFileSync(join(dest, 'lower'), 'from below');
    await extract(tarOf(header({ name: 'link', type: '1', linkname: 'lower', ...own })), {}, dest);
    assert.equal(statSync(join(dest, 'link')).ino, statSync(join(dest, 'lower')).ino);
  });

  it('later entries see a link or directory that replaced an earlier one (no stale resolution)', async () => {
    const { dest } = await extract(
      tarOf(
        header({ name: 'usr/lib/sub/', type: '5', ...own }),
        header({ name: 'lib', type: '2', linkname: 'usr/lib', ...own }),
        fileEntry('lib/sub/a', 'via link', own),
        header({ name: 'lib/', type: '5', mode: 0o750, ...own }),
        fileEntry('lib/sub/b', 'in the new dir', own),
        header({ name: 'd/sub/', type: '5', mode: 0o700, ...own }),
        fileEntry('d/x', 'x', own),
        header({ name: 'd', type: '2', linkname: 'other', ...own }),
        header({ name: 'other/sub/', type: '5', mode: 0o755, ...own }),
        fileEntry('d/y', 'y', own),
      ),
    );
    assert.equal(readFileSync(join(dest, 'usr/lib/sub/a'), 'utf8'), 'via link');
    assert.ok(lstatSync(join(dest, 'lib')).isDirectory());
    assert.equal(readFileSync(join(dest, 'lib/sub/b'), 'utf8'), 'in the new dir');
    assert.deepEqual(readdirSync(join(dest, 'usr/lib/sub')), ['a']);
    assert.equal(statSync(join(dest, 'lib')).mode & 0o7777, 0o750);
    assert.equal(readFileSync(join(dest, 'other/y'), 'utf8'), 'y');
    // d/sub's deferred mode 0700 must not land on other/sub through the link that replaced d.
    assert.equal(statSync(join(dest, 'other/sub')).mode & 0o7777, 0o755);
  });

  it('a hardlink to itself changes nothing', async () => {
    const { dest } = await extract(
      tarOf(fileEntry('a', 'x', own), header({ name: 'a', type: '1', linkname: 'a', ...own })),
    );
    assert.equal(readFileSync(join(dest, 'a'), 'utf8'), 'x');
  });
});

describe('applyLayer: whiteouts, apply mode (vfs)', () => {
  function lowerTree(): string {
    const dest = tempDir();
    mkdirSync(join(dest, 'gone-dir/deep'), { recursive: true });
    writeFileSync(join(dest, 'gone-dir/deep/f'), 'x');
    writeFileSync(join(dest, 'gone-file'), 'x');
    symlinkSync('/etc', join(dest, 'gone-link'));
    mkdirSync(join(dest, 'opq/sub'), { recursive: true });
    writeFileSync(join(dest, 'opq/lower-file'), 'x');
    writeFileSync(join(dest, 'opq/sub/lower'), 'x');
    writeFileSync(join(dest, 'keep'), 'x');
    return dest;
  }

  it('.wh.NAME deletes files, directories (recursively) and links; .wh..wh..opq empties lower content', async () => {
    const dest = lowerTree();
    const { result } = await extract(
      tarOf(
        fileEntry('.wh.gone-dir', '', own),
        fileEntry('.wh.gone-file', '', own),
        fileEntry('.wh.gone-link', '', own),
        fileEntry('.wh.never-existed', '', own),
        fileEntry('nowhere/.wh.x', '', own),
        // This layer's own entries in the opaque directory, before and after the marker.
        fileEntry('opq/mine-before', 'mine', own),
        fileEntry('opq/sub/mine', 'mine', own),
        fileEntry('opq/.wh..wh..opq', '', own),
        fileEntry('opq/mine-after', 'mine', own),
      ),
      {},
      dest,
    );
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(readdirSync(dest).sort(), ['keep', 'opq']);
    assert.deepEqual(readdirSync(join(dest, 'opq')).sort(), ['mine-after', 'mine-before', 'sub']);
    assert.deepEqual(readdirSync(join(dest, 'opq/sub')), ['mine']);
    assert.ok(existsSync('/etc'), 'the link was removed, not its target');
  });

  it('a whiteout does not delete what the same layer made; aufs metadata is ignored', async () => {
    const { dest } = await extract(
      tarOf(
        fileEntry('mine', 'x', own),
        fileEntry('.wh.mine', '', own),
        fileEntry('.wh..wh.aufs', '', own),
        header({ name: '.wh..wh.plnk/', type: '5', ...own }),
        fileEntry('.wh..wh.plnk/123.456', 'x', own),
      ),
    );
    assert.deepEqual(readdirSync(dest), ['mine']);
  });
});

describe('applyLayer: whiteouts, overlay mode', () => {
  it('writes 0:0 character devices and user.overlay.opaque (userxattr)', async () => {
    const { dest, result } = await extract(
      tarOf(
        header({ name: 'dir/', type: '5', ...own }),
        fileEntry('dir/.wh.gone', '', own),
        fileEntry('dir/.wh..wh..opq', '', own),
        fileEntry('.wh.top', '', own),
        fileEntry('made/by/whiteout/.wh.x', '', own),
        fileEntry('mine', 'x', own),
        fileEntry('.wh.mine', '', own),
      ),
      { whiteouts: 'overlay', userxattr: true },
    );
    assert.deepEqual(result.warnings, []);
    for (const w of ['dir/gone', 'top', 'made/by/whiteout/x']) {
      const st = lstatSync(join(dest, w));
      assert.ok(st.isCharacterDevice(), w);
      assert.equal(st.rdev, 0, w);
    }
    assert.deepEqual(sys().lgetxattr(join(dest, 'dir'), 'user.overlay.opaque'), Buffer.from('y'));
    assert.equal(existsSync(join(dest, 'dir/.wh..wh..opq')), false);
    assert.ok(lstatSync(join(dest, 'mine')).isFile(), "the layer's own file wins over its whiteout");
  });
});

describe('applyLayer: rootless limits', () => {
  it('skips device nodes with one warning, and hardlinks to them; makes FIFOs', async () => {
    const { dest, result } = await extract(
      tarOf(
        header({ name: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666, ...own }),
        header({ name: 'dev/loop0', type: '4', devmajor: 7, devminor: 0, ...own }),
        header({ name: 'dev/null2', type: '1', linkname: 'dev/null', ...own }),
        header({ name: 'run/fifo', type: '6', mode: 0o620, ...own }),
      ),
      { canMknod: false },
    );
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0]!, /skipped 2 device nodes \(such as \/dev\/null\): rootless/);
    assert.deepEqual(readdirSync(join(dest, 'dev')), []);
    assert.ok(lstatSync(join(dest, 'run/fifo')).isFIFO());
    assert.equal(lstatSync(join(dest, 'run/fifo')).mode & 0o7777, 0o620);
  });

  it('refuses ids beyond the namespace, naming the file and the id', async () => {
    await assert.rejects(
      extract(tarOf(fileEntry('usr/bin/x', 'x', { uid: 70000, gid: 0 })), { maxUid: 65536, maxGid: 65536 }),
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'LAYER_ID_UNMAPPED');
        assert.match(e.message, /usr\/bin\/x .*uid 70000.*0-65536/);
        assert.match(e.hint!, /hutch setup/);
        return true;
      },
    );
    await assert.rejects(
      extract(tarOf(fileEntry('g', 'x', { uid: 0, gid: 65537 })), { maxUid: 65536, maxGid: 65536 }),
      /gid 65537/,
    );
  });

  it('ignores overlayfs xattrs carried by a layer, with a warning', async () => {
    const { dest, result } = await extract(
      tarOf(pax([['SCHILY.xattr.user.overlay.opaque', 'y']]), header({ name: 'd/', type: '5', ...own })),
    );
    assert.equal(sys().lgetxattr(join(dest, 'd'), 'user.overlay.opaque'), null);
    assert.match(result.warnings.join('\n'), /ignored 1 overlayfs xattr/);
  });

  it('skips trusted.* and security.selinux rootless, with a warning', async () => {
    const { dest, result } = await extract(
      tarOf(
        pax([
          ['SCHILY.xattr.trusted.x', 'y'],
          ['SCHILY.xattr.security.selinux', 'system_u:object_r:bin_t:s0'],
          ['SCHILY.xattr.user.kept', 'k'],
        ]),
        fileEntry('f', 'x', own),
      ),
      { canMknod: false },
    );
    assert.deepEqual(sys().lgetxattr(join(dest, 'f'), 'user.kept'), Buffer.from('k'));
    assert.equal(result.warnings.length, 2);
    assert.match(result.warnings.join('\n'), /trusted\.x on 1 file/);
    assert.match(result.warnings.join('\n'), /security\.selinux on 1 file/);
  });
});
