/**
 * The tar writer, read back by hutch's own extractor and by GNU tar: long
 * and non-ASCII names, hard links, symbolic links, extended attributes,
 * large bodies, the header fields ustar cannot hold, and rebaseTar (the
 * rewriting behind `cp -`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { applyLayer } from '../../../../src/storage/extract/index.ts';
import type { ExtractOptions } from '../../../../src/storage/extract/index.ts';
import { parseHeader, parsePax } from '../../../../src/storage/extract/tar.ts';
import {
  END_OF_ARCHIVE,
  TreePacker,
  encodeHeader,
  fromBytes,
  padding,
  rebaseTar,
  toBytes,
} from '../../../../src/storage/archive/tar-writer.ts';
import { sys } from '../../../../src/sys/native.ts';
import { HutchError } from '../../../../src/util/errors.ts';
import { extractOptions, fileEntry, gnuLong, header, tarOf } from '../extract/tar-build.ts';
import { tempDir } from '../../../support/temp.ts';

const T0 = 1_600_000_000;
const ME = { uid: process.getuid!(), gid: process.getgid!() };

function concat(gen: Iterable<Buffer>): Buffer {
  return Buffer.concat([...gen]);
}

async function extract(
  tar: Buffer | AsyncIterable<Buffer>,
  over: Partial<ExtractOptions> = {},
): Promise<string> {
  const dest = tempDir();
  const stream = Buffer.isBuffer(tar) ? Readable.from([tar]) : Readable.from(tar);
  await applyLayer(stream, dest, extractOptions(over));
  return dest;
}

/** Everything about a tree that a copy should keep, by relative path. */
function describeTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = lstatSync(p);
      let what = `${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (!st.isDirectory()) what += ` t=${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isFile()) what += ` ${readFileSync(p).toString('base64')}`;
      if (st.isSymbolicLink()) what += ` -> ${readlinkSync(p)}`;
      if (st.isFile() && st.nlink > 1) what += ` links=${st.nlink}`;
      out[r] = what;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

function userXattrsWork(dir: string): boolean {
  const f = join(dir, '.probe');
  writeFileSync(f, '');
  try {
    sys().lsetxattr(f, 'user.probe', Buffer.from('1'));
    return true;
  } catch {
    return false;
  } finally {
    rmSync(f);
  }
}

describe('encodeHeader', () => {
  it('writes plain ustar for short names, with a valid checksum the reader accepts', () => {
    const h = encodeHeader({
      name: 'etc/hostname',
      type: 'file',
      mode: 0o644,
      uid: 1,
      gid: 2,
      size: 5,
      mtime: T0,
    });
    assert.equal(h.length, 512);
    const p = parseHeader(h, 0, 0);
    assert.deepEqual(
      [p.name, p.type, p.mode, p.uid, p.gid, p.size, p.mtime],
      ['etc/hostname', '0', 0o644, 1, 2, 5, T0],
    );
  });

  it('splits names up to 256 bytes over prefix and name, and adds a slash to directories', () => {
    const name = `${'a'.repeat(150)}/${'b'.repeat(99)}`;
    const h = encodeHeader({ name, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: T0 });
    assert.equal(h.length, 512, 'no PAX header needed');
    assert.equal(parseHeader(h, 0, 0).name, `${name}/`);
  });

  it('puts long and non-ASCII names, long link targets, big sizes and ids, odd times and xattrs in PAX', () => {
    const name = toBytes(`dir/${'ü'.repeat(80)}`);
    const h = encodeHeader({
      name,
      type: 'file',
      mode: 0o600,
      uid: 3_000_000,
      gid: 5,
      size: 10 * 2 ** 30,
      mtime: -5,
      xattrs: new Map([['security.capability', Buffer.from([0, 1, 0xff])]]),
    });
    const pax = parseHeader(h, 0, 0);
    assert.equal(pax.type, 'x');
    const recs = parsePax(h.subarray(512, 512 + pax.size), 0);
    assert.equal(recs.get('path')!.toString('utf8'), fromBytes(name));
    assert.equal(recs.get('uid')!.toString(), '3000000');
    assert.equal(recs.get('size')!.toString(), String(10 * 2 ** 30));
    assert.equal(recs.get('mtime')!.toString(), '-5');
    assert.deepEqual(recs.get('SCHILY.xattr.security.capability'), Buffer.from([0, 1, 0xff]));
    const main = parseHeader(h, h.length - 512, 0);
    assert.equal(main.size, 0, 'the size field defers to PAX');
    const link = encodeHeader({
      name: 'l',
      type: 'symlink',
      mode: 0o777,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: T0,
      linkname: 'x'.repeat(300),
    });
    const lp = parseHeader(link, 0, 0);
    assert.equal(
      parsePax(link.subarray(512, 512 + lp.size), 0)
        .get('linkpath')!
        .toString(),
      'x'.repeat(300),
    );
  });

  it('pads PAX records whose length changes its own digit count correctly', () => {
    // A record of 99 + 2 digits = 101 bytes needs 3 digits: the length must be recomputed.
    for (let n = 80; n < 120; n++) {
      const name = 'n'.repeat(n + 100);
      const h = encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: T0 });
      const p = parseHeader(h, 0, 0);
      assert.equal(
        parsePax(h.subarray(512, 512 + p.size), 0)
          .get('path')!
          .toString(),
        name,
      );
    }
  });

  it('gives padding to the next block', () => {
    assert.equal(padding(0).length, 0);
    assert.equal(padding(1).length, 511);
    assert.equal(padding(512).length, 0);
    assert.equal(padding(513).length, 511);
  });
});

describe('TreePacker round trip through the extractor', () => {
  it('keeps names, bodies, modes, times, symlinks, hard links, FIFOs and xattrs', async () => {
    const src = tempDir();
    const long = `${'deep/'.repeat(30)}${'f'.repeat(120)}`;
    mkdirSync(join(src, long, '..'), { recursive: true });
    writeFileSync(join(src, long), 'long name');
    writeFileSync(join(src, 'ünïcödé ✓'), 'utf8');
    mkdirSync(join(src, 'dir'), { mode: 0o750 });
    writeFileSync(join(src, 'dir/exe'), '#!/bin/sh\n');
    chmodSync(join(src, 'dir/exe'), 0o4755);
    const big = Buffer.alloc(2.5 * (1 << 20));
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
    writeFileSync(join(src, 'dir/big'), big);
    writeFileSync(join(src, 'empty'), '');
    linkSync(join(src, 'dir/exe'), join(src, 'hard'));
    symlinkSync('dir/exe', join(src, 'sym'));
    symlinkSync('/' + 't'.repeat(200), join(src, 'longsym'));
    spawnSync('mkfifo', [join(src, 'fifo')]);
    const xattrs = userXattrsWork(src);
    if (xattrs) sys().lsetxattr(join(src, 'dir/big'), 'user.note', Buffer.from([0, 1, 2, 0xff]));
    for (const p of ['dir/big', 'empty', 'ünïcödé ✓']) utimesSync(join(src, p), T0, T0 + 7);
    utimesSync(join(src, 'dir'), T0, T0 + 9);

    const packer = new TreePacker();
    const tar = concat(
      (function* () {
        yield* packer.tree(toBytes(src), undefined);
        yield* packer.end();
      })(),
    );
    const dest = await extract(tar);
    assert.deepEqual(describeTree(dest), describeTree(src));
    assert.equal(lstatSync(join(dest, 'dir')).mtimeMs, (T0 + 9) * 1000);
    assert.equal(lstatSync(join(dest, 'hard')).ino, lstatSync(join(dest, 'dir/exe')).ino);
    if (xattrs)
      assert.deepEqual(sys().lgetxattr(join(dest, 'dir/big'), 'user.note'), Buffer.from([0, 1, 2, 0xff]));

    // GNU tar agrees on the listing.
    const file = join(tempDir(), 'x.tar');
    writeFileSync(file, tar);
    const t = spawnSync('tar', ['--quoting-style=literal', '-tf', file], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stderr);
    const listed = t.stdout.split('\n').filter(Boolean);
    assert.ok(listed.includes(long), 'GNU tar reads the PAX name');
    assert.ok(listed.includes('ünïcödé ✓'));
    assert.ok(listed.includes('dir/'));
  });

  it('keeps a name that is not UTF-8 byte for byte', async () => {
    const src = tempDir();
    const raw = Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x74]); // "f\xff\xfe.t"
    writeFileSync(Buffer.concat([Buffer.from(`${src}/`), raw]), 'bytes');
    const packer = new TreePacker();
    const tar = concat(
      (function* () {
        yield* packer.tree(toBytes(src), undefined);
        yield* packer.end();
      })(),
    );
    const file = join(tempDir(), 'x.tar');
    writeFileSync(file, tar);
    const t = spawnSync('tar', ['--quoting-style=literal', '-tf', file]);
    assert.equal(t.status, 0);
    assert.deepEqual(t.stdout.subarray(0, raw.length), raw);
  });

  it("writes the given owner instead of the files' own, and refuses whiteout names when asked", () => {
    const src = tempDir();
    writeFileSync(join(src, 'f'), 'x');
    const packer = new TreePacker({ owner: { uid: 7, gid: 8 } });
    const tar = concat(packer.entry(toBytes(join(src, 'f')), 'f'));
    const h = parseHeader(tar, 0, 0);
    assert.deepEqual([h.uid, h.gid], [7, 8]);
    writeFileSync(join(src, '.wh.f'), '');
    const strict = new TreePacker({ refuseWhiteoutNames: true });
    assert.throws(
      () => concat(strict.tree(toBytes(src), undefined)),
      (e: unknown) => e instanceof HutchError && e.code === 'WHITEOUT_NAME',
    );
  });

  it('skips sockets and says so', () => {
    const src = tempDir();
    const py = spawnSync('python3', [
      '-c',
      `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(join(src, 'sock'))})`,
    ]);
    if (py.status !== 0) return;
    const skipped: string[] = [];
    const packer = new TreePacker({ onSkip: (n) => skipped.push(n) });
    const tar = concat(packer.tree(toBytes(src), undefined));
    assert.equal(tar.length, 0);
    assert.deepEqual(skipped, ['sock']);
  });

  it('refuses a file that leads out of a confined root', () => {
    const root = tempDir();
    const outside = tempDir();
    writeFileSync(join(outside, 'secret'), 's');
    symlinkSync(outside, join(root, 'link'));
    const packer = new TreePacker({ confine: toBytes(root) });
    assert.throws(
      () => concat(packer.entry(toBytes(join(root, 'link/secret')), 'secret')),
      (e: unknown) => e instanceof HutchError && e.code === 'PATH_ESCAPED',
    );
  });
});

describe('rebaseTar', () => {
  async function rebased(tar: Buffer, prefix: string, owner?: { uid: number; gid: number }): Promise<Buffer> {
    const parts: Buffer[] = [];
    const unsafe = (n: string): Error => new HutchError('CP_UNSAFE', `unsafe ${n}`);
    for await (const c of rebaseTar(Readable.from([tar.subarray(0, 700), tar.subarray(700)]), {
      prefix,
      owner,
      unsafe,
    }))
      parts.push(c);
    return Buffer.concat(parts);
  }

  it('moves every member under the prefix, hard link targets too, with the owner replaced', async () => {
    const long = `x/${'y'.repeat(150)}`;
    const tar = tarOf(
      header({ name: 'd/', type: '5', uid: 5, gid: 6 }),
      fileEntry('d/f', 'body', { uid: 5, gid: 6 }),
      header({ name: 'd/h', type: '1', linkname: 'd/f' }),
      header({ name: 'd/s', type: '2', linkname: '/abs' }),
      gnuLong(long),
      fileEntry('ignored', 'gnu long', {}),
    );
    const out = await rebased(tar, 'tmp/target', ME);
    const dest = await extract(out);
    assert.equal(readFileSync(join(dest, 'tmp/target/d/f'), 'utf8'), 'body');
    assert.equal(lstatSync(join(dest, 'tmp/target/d/h')).ino, lstatSync(join(dest, 'tmp/target/d/f')).ino);
    assert.equal(readlinkSync(join(dest, 'tmp/target/d/s')), '/abs', 'symbolic link targets are kept');
    assert.equal(readFileSync(join(dest, 'tmp/target', long), 'utf8'), 'gnu long');
    assert.equal(lstatSync(join(dest, 'tmp/target/d/f')).uid, ME.uid, 'the given owner replaces 5:6');
  });

  it('refuses names that climb out, and whiteout names', async () => {
    await assert.rejects(rebased(tarOf(fileEntry('../evil', 'x', {})), 'tmp'), /unsafe \.\.\/evil/);
    await assert.rejects(rebased(tarOf(fileEntry('a/../../evil', 'x', {})), ''), /unsafe/);
    await assert.rejects(
      rebased(tarOf(fileEntry('d/.wh.x', '', {})), 'tmp'),
      (e: unknown) => e instanceof HutchError && e.code === 'WHITEOUT_NAME',
    );
  });

  it('keeps PAX records (xattrs, mtime) and refuses an empty or cut stream', async () => {
    const packer = new TreePacker();
    const tar = Buffer.concat([
      ...packer.raw({
        name: 'f',
        type: 'file',
        mode: 0o640,
        uid: 0,
        gid: 0,
        size: 3,
        mtime: T0,
        xattrs: new Map([['user.k', Buffer.from('v')]]),
      }),
      Buffer.from('abc'),
      padding(3),
      END_OF_ARCHIVE,
    ]);
    const out = await rebased(tar, 'p');
    const pax = parseHeader(out, 0, 0);
    assert.equal(pax.type, 'x');
    assert.deepEqual(
      parsePax(out.subarray(512, 512 + pax.size), 0).get('SCHILY.xattr.user.k'),
      Buffer.from('v'),
    );
    await assert.rejects(rebased(Buffer.alloc(0), ''), /empty/);
    await assert.rejects(
      rebased(tar.subarray(0, 1024 + 512 + 1), ''),
      (e: unknown) => e instanceof HutchError && e.code === 'TAR_TRUNCATED',
    );
  });
});
