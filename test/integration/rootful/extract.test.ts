/**
 * The layer extractor as host root: ownership across ids, setuid and file
 * capabilities in the right order, device nodes, trusted xattrs and
 * overlayfs's trusted.overlay.opaque, a hostile layer aimed at the host, and
 * the Debian test layer compared with GNU tar's extraction of it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { describe, it } from 'node:test';
import { applyLayer } from '../../../src/storage/extract/index.ts';
import type { ExtractOptions } from '../../../src/storage/extract/index.ts';
import { sys } from '../../../src/sys/native.ts';
import {
  extractOptions,
  fileEntry,
  header,
  pax,
  streamOf,
  tarOf,
} from '../../unit/storage/extract/tar-build.ts';
import { tempDir } from '../../support/temp.ts';

const root = process.getuid!() === 0;
const DEBIAN = '/var/cache/hutch-test/debian-bookworm-minbase.tar.gz';

function options(over: Partial<ExtractOptions> = {}): ExtractOptions {
  return extractOptions({ userxattr: false, canMknod: true, ...over });
}

// security.capability v2: CAP_SETUID (7) and CAP_NET_BIND_SERVICE (10) permitted and effective.
const CAPS_V2 = Buffer.from([0x01, 0, 0, 0x02, 0x80, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

describe('extract: rootful', { skip: root ? false : 'runs as root only' }, () => {
  it('chowns to the tar ids, then sets xattrs and modes so setuid and file caps survive', async () => {
    const dest = tempDir();
    const tar = tarOf(
      header({ name: 'srv/', type: '5', uid: 1000, gid: 1001, mode: 0o2750 }),
      pax([['SCHILY.xattr.security.capability', CAPS_V2]]),
      fileEntry('srv/ping', 'binary', { uid: 1000, gid: 1000, mode: 0o4755 }),
      header({ name: 'srv/link', type: '2', linkname: 'ping', uid: 1002, gid: 1003 }),
      header({ name: 'srv/hard', type: '1', linkname: 'srv/ping', uid: 0, gid: 0, mode: 0o600 }),
      fileEntry('srv/high', 'x', { uid: 4_000_000, gid: 4_000_001 }),
    );
    const r = await applyLayer(streamOf(tar), dest, options());
    assert.deepEqual(r.warnings, []);
    const ping = lstatSync(join(dest, 'srv/ping'));
    assert.deepEqual([ping.uid, ping.gid, ping.mode & 0o7777], [1000, 1000, 0o4755]);
    assert.deepEqual(sys().lgetxattr(join(dest, 'srv/ping'), 'security.capability'), CAPS_V2);
    const srv = lstatSync(join(dest, 'srv'));
    assert.deepEqual([srv.uid, srv.gid, srv.mode & 0o7777], [1000, 1001, 0o2750]);
    const link = lstatSync(join(dest, 'srv/link'));
    assert.deepEqual([link.uid, link.gid], [1002, 1003]);
    // A hardlink's header does not change the inode it joins.
    assert.equal(lstatSync(join(dest, 'srv/hard')).ino, ping.ino);
    assert.equal(lstatSync(join(dest, 'srv/hard')).mode & 0o7777, 0o4755);
    assert.equal(lstatSync(join(dest, 'srv/high')).uid, 4_000_000);
  });

  it('makes device nodes and FIFOs with their numbers, owners and modes', async () => {
    const dest = tempDir();
    const tar = tarOf(
      header({ name: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666 }),
      header({ name: 'dev/loop7', type: '4', devmajor: 7, devminor: 7, mode: 0o660, gid: 6 }),
      header({ name: 'dev/initctl', type: '6', mode: 0o600, uid: 5 }),
    );
    const r = await applyLayer(streamOf(tar), dest, options());
    assert.deepEqual(r.warnings, []);
    const nul = lstatSync(join(dest, 'dev/null'));
    assert.ok(nul.isCharacterDevice());
    assert.equal(nul.rdev, (1 << 8) | 3);
    assert.equal(nul.mode & 0o7777, 0o666);
    const loop = lstatSync(join(dest, 'dev/loop7'));
    assert.ok(loop.isBlockDevice());
    assert.equal(loop.rdev, (7 << 8) | 7);
    assert.equal(loop.gid, 6);
    const fifo = lstatSync(join(dest, 'dev/initctl'));
    assert.ok(fifo.isFIFO());
    assert.equal(fifo.uid, 5);
  });

  it('overlay mode: trusted.overlay.opaque, whiteouts owned as the tar says, trusted xattrs kept', async () => {
    const dest = tempDir();
    const tar = tarOf(
      header({ name: 'etc/', type: '5' }),
      fileEntry('etc/.wh..wh..opq', ''),
      fileEntry('etc/.wh.motd', '', { uid: 7, gid: 8 }),
      pax([['SCHILY.xattr.trusted.hutch-test', 'v']]),
      fileEntry('etc/kept', 'x'),
    );
    const r = await applyLayer(streamOf(tar), dest, options({ whiteouts: 'overlay', userxattr: false }));
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(sys().lgetxattr(join(dest, 'etc'), 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.equal(sys().lgetxattr(join(dest, 'etc'), 'user.overlay.opaque'), null);
    const wh = lstatSync(join(dest, 'etc/motd'));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.deepEqual([wh.uid, wh.gid], [7, 8]);
    assert.deepEqual(sys().lgetxattr(join(dest, 'etc/kept'), 'trusted.hutch-test'), Buffer.from('v'));
  });

  it('a hostile layer run as root still cannot reach the host', async () => {
    const box = tempDir();
    const dest = join(box, 'dest');
    mkdirSync(dest);
    const shadow = lstatSync('/etc/shadow', { throwIfNoEntry: false });
    const tar = tarOf(
      header({ name: 'evil', type: '2', linkname: '/' }),
      fileEntry('evil/etc/shadow', 'root::0:0:::::\n'),
      header({ name: 'evil/home', type: '2', linkname: '../../../../root' }),
      fileEntry('evil/home/.ssh/authorized_keys', 'ssh-ed25519 AAAA pwned'),
      header({ name: 'evil/dev/mem-copy', type: '3', devmajor: 1, devminor: 1 }),
    );
    await applyLayer(streamOf(tar), dest, options());
    assert.equal(lstatSync(join(dest, 'etc/shadow')).size, 15);
    assert.ok(lstatSync(join(dest, 'home')).isSymbolicLink());
    assert.ok(existsSync(join(dest, 'root/.ssh/authorized_keys')));
    assert.equal(
      existsSync('/root/.ssh/authorized_keys') && lstatSync('/root/.ssh/authorized_keys').size === 22,
      false,
    );
    assert.ok(lstatSync(join(dest, 'dev/mem-copy')).isCharacterDevice());
    if (shadow) assert.equal(lstatSync('/etc/shadow').mtimeMs, shadow.mtimeMs);
    assert.equal(existsSync('/dev/mem-copy'), false);
    await assert.rejects(
      applyLayer(
        streamOf(tarOf(header({ name: 'x', type: '1', linkname: '../../../../etc/shadow' }))),
        dest,
        options(),
      ),
      { code: 'LAYER_UNSAFE' },
    );
  });

  it(
    'extracts the Debian test layer exactly as GNU tar does',
    { skip: existsSync(DEBIAN) ? false : `${DEBIAN} missing` },
    async () => {
      const ours = tempDir();
      const theirs = tempDir();
      const r = await applyLayer(createReadStream(DEBIAN).pipe(createGunzip()), ours, options());
      assert.deepEqual(r.warnings, []);
      const t = spawnSync(
        'tar',
        [
          '-xzf',
          DEBIAN,
          '-C',
          theirs,
          '--numeric-owner',
          '--same-permissions',
          '--xattrs',
          '--xattrs-include=*',
        ],
        { encoding: 'utf8' },
      );
      assert.equal(t.status, 0, t.stderr);
      const list = (dir: string): string[] => {
        const f = spawnSync('find', ['.', '-mindepth', '1', '-printf', '%p %y %m %U %G %s %n %l %T@\\n'], {
          cwd: dir,
          encoding: 'utf8',
          maxBuffer: 64 << 20,
        });
        return f.stdout.split('\n').sort();
      };
      const a = list(ours);
      const b = list(theirs);
      assert.ok(a.length > 5000);
      assert.deepEqual(a, b);
      const rdev = (dir: string): string =>
        spawnSync('find', ['.', '-type', 'c', '-exec', 'stat', '-c', '%n %t:%T', '{}', '+'], {
          cwd: dir,
          encoding: 'utf8',
        })
          .stdout.split('\n')
          .sort()
          .join('\n');
      assert.equal(rdev(ours), rdev(theirs));
      assert.equal(
        r.size,
        Number(spawnSync('sh', ['-c', `gzip -dc ${DEBIAN} | wc -c`], { encoding: 'utf8' }).stdout),
      );
    },
  );
});
