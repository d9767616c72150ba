/**
 * `-u` and `--group-add` against a container's /etc/passwd and /etc/group,
 * and the in-root resolver under them: hostile layouts must never lead to a
 * host file. The "host" file is one this test makes outside the rootfs with
 * content no image has, so reading it would show in the results.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { readFileInRoot, resolveInRoot } from '../../../src/runtime/in-root.ts';
import { parseGroup, parsePasswd, resolveUser } from '../../../src/runtime/user.ts';
import { tempDir } from '../../support/temp.ts';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment:x:5:5::/c:/bin/sh',
  '',
  'alice:x:1000:1000:Alice:/home/alice:/bin/sh',
  'bob:x:1001:100::/home/bob:/bin/sh',
  'nohome:x:1002:1002::',
  'short:x:7',
  'badid:x:abc:1::/x:/bin/sh',
  'huge:x:99999999999:1::/x:/bin/sh',
  '+nis:x:0:0::/:/bin/sh',
  'crlf:x:1003:1003::/home/crlf:/bin/sh\r',
].join('\n');

const GROUP = [
  'root:x:0:root',
  'wheel:x:10:root,alice',
  'users:x:100:',
  'alice:x:1000:',
  'audio:x:29: bob , alice',
  'broken:x:',
  'staff:x:50:bob',
].join('\n');

/** A rootfs with ordinary /etc/passwd and /etc/group. */
function normalRoot(): string {
  const root = tempDir();
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/passwd'), PASSWD);
  writeFileSync(join(root, 'etc/group'), GROUP);
  return root;
}

/** A "host" directory outside the rootfs with passwd/group files no image has. */
function hostSecrets(): { dir: string; passwd: string; group: string } {
  const dir = tempDir();
  mkdirSync(join(dir, 'etc'));
  const passwd = join(dir, 'etc/passwd');
  const group = join(dir, 'etc/group');
  writeFileSync(passwd, 'hostonly:x:4242:4243:HOST SECRET:/host-secret:/bin/sh\n');
  writeFileSync(group, 'hostgrp:x:4244:hostonly,root\n');
  return { dir, passwd, group };
}

describe('parsePasswd and parseGroup', () => {
  it('keep well-formed lines and skip comments, blanks, short, non-numeric, out-of-range and NIS lines', () => {
    assert.deepEqual(parsePasswd(PASSWD), [
      { name: 'root', uid: 0, gid: 0, home: '/root' },
      { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice' },
      { name: 'bob', uid: 1001, gid: 100, home: '/home/bob' },
      { name: 'nohome', uid: 1002, gid: 1002, home: '' },
      { name: 'crlf', uid: 1003, gid: 1003, home: '/home/crlf' },
    ]);
    assert.deepEqual(
      parseGroup(GROUP).map((g) => [g.name, g.gid, g.members]),
      [
        ['root', 0, ['root']],
        ['wheel', 10, ['root', 'alice']],
        ['users', 100, []],
        ['alice', 1000, []],
        ['audio', 29, ['bob', 'alice']],
        ['staff', 50, ['bob']],
      ],
    );
  });
});

describe('resolveUser: spec forms', () => {
  const root = normalRoot();

  it('no spec or an empty one is root, with root memberships', () => {
    const want = { uid: 0, gid: 0, additionalGids: [0, 10], home: '/root', name: 'root', keepGroups: false };
    assert.deepEqual(resolveUser(root, undefined), want);
    assert.deepEqual(resolveUser(root, ''), want);
  });

  it('name: ids and home from passwd, memberships from group', () => {
    assert.deepEqual(resolveUser(root, 'alice'), {
      uid: 1000,
      gid: 1000,
      additionalGids: [10, 29],
      home: '/home/alice',
      name: 'alice',
      keepGroups: false,
    });
  });

  it('a uid found in passwd is that user, memberships included', () => {
    const u = resolveUser(root, '1001');
    assert.deepEqual(
      [u.uid, u.gid, u.name, u.home, u.additionalGids],
      [1001, 100, 'bob', '/home/bob', [29, 50]],
    );
  });

  it('a uid not in passwd runs with gid 0, HOME / and no name', () => {
    assert.deepEqual(resolveUser(root, '5000'), {
      uid: 5000,
      gid: 0,
      additionalGids: [],
      home: '/',
      name: undefined,
      keepGroups: false,
    });
  });

  it('a passwd entry without a home gets HOME /', () => {
    assert.equal(resolveUser(root, 'nohome').home, '/');
  });

  it('name:group and name:gid replace the primary group and bring no memberships', () => {
    const byName = resolveUser(root, 'alice:users');
    assert.deepEqual([byName.uid, byName.gid, byName.additionalGids], [1000, 100, []]);
    const byGid = resolveUser(root, 'alice:777');
    assert.deepEqual([byGid.uid, byGid.gid, byGid.home], [1000, 777, '/home/alice']);
  });

  it('uid:gid and uid:group', () => {
    const u = resolveUser(root, '5000:6000');
    assert.deepEqual([u.uid, u.gid, u.name, u.home], [5000, 6000, undefined, '/']);
    const g = resolveUser(root, '5000:wheel');
    assert.deepEqual([g.uid, g.gid], [5000, 10]);
  });

  it('an unknown name fails with exit 126, as docker does', () => {
    assert.throws(
      () => resolveUser(root, 'mallory'),
      (e: unknown) => {
        const err = e as { code: string; message: string; exitCode: number };
        assert.equal(err.code, 'NO_SUCH_USER');
        assert.equal(err.message, 'unable to find user mallory: no matching entries in passwd file');
        assert.equal(err.exitCode, 126);
        return true;
      },
    );
  });

  it('an unknown group name fails; ids out of range fail', () => {
    assert.throws(() => resolveUser(root, 'alice:nogroup'), {
      code: 'NO_SUCH_GROUP',
      message: 'unable to find group nogroup: no matching entries in group file',
      exitCode: 126,
    });
    assert.throws(() => resolveUser(root, '4294967296'), { code: 'BAD_USER' });
    assert.throws(() => resolveUser(root, '0:2147483648'), { code: 'BAD_USER' });
  });

  it('a rootfs without /etc/passwd or /etc/group: numeric specs work, names do not', () => {
    const empty = tempDir();
    assert.deepEqual(resolveUser(empty, undefined), {
      uid: 0,
      gid: 0,
      additionalGids: [],
      home: '/',
      name: undefined,
      keepGroups: false,
    });
    assert.deepEqual(resolveUser(empty, '12:34').gid, 34);
    assert.throws(() => resolveUser(empty, 'root'), { code: 'NO_SUCH_USER' });
  });
});

describe('resolveUser: --group-add', () => {
  const root = normalRoot();

  it('adds gids as given and names via /etc/group, after memberships, without duplicates', () => {
    const u = resolveUser(root, 'alice', ['staff', '4000', 'wheel', '4000']);
    assert.deepEqual(u.additionalGids, [10, 29, 50, 4000]);
  });

  it('applies with an explicit group too', () => {
    assert.deepEqual(resolveUser(root, '5000:5000', ['users']).additionalGids, [100]);
  });

  it('keep-groups is a flag, not a group', () => {
    const u = resolveUser(root, '5000', ['keep-groups', '7']);
    assert.equal(u.keepGroups, true);
    assert.deepEqual(u.additionalGids, [7]);
  });

  it('an unknown group name or an empty entry fails', () => {
    assert.throws(() => resolveUser(root, 'alice', ['nogroup']), { code: 'NO_SUCH_GROUP', exitCode: 126 });
    assert.throws(() => resolveUser(root, 'alice', ['']), { code: 'BAD_FLAG' });
  });
});

describe('hostile root filesystems never lead to host files', () => {
  it('/etc/passwd as an absolute link to a host file is read inside the rootfs', () => {
    const host = hostSecrets();
    const root = tempDir();
    mkdirSync(join(root, 'etc'));
    symlinkSync(host.passwd, join(root, 'etc/passwd'));
    symlinkSync(host.group, join(root, 'etc/group'));
    // The link's target, taken inside the rootfs, does not exist: empty files.
    assert.equal(readFileInRoot(root, '/etc/passwd'), undefined);
    assert.throws(() => resolveUser(root, 'hostonly'), { code: 'NO_SUCH_USER' });
    const u = resolveUser(root, '4242');
    assert.deepEqual([u.gid, u.home, u.name], [0, '/', undefined]);
    assert.deepEqual(resolveUser(root, undefined).additionalGids, []);
    // And the same target made inside the rootfs is what is read.
    mkdirSync(join(root, host.dir, 'etc'), { recursive: true });
    writeFileSync(join(root, host.passwd), 'inside:x:1:2::/in:/bin/sh\n');
    assert.equal(resolveUser(root, 'inside').home, '/in');
    assert.equal(resolveInRoot(root, '/etc/passwd'), join(root, host.passwd));
  });

  it('/etc as a link to / stays at the rootfs', () => {
    const host = hostSecrets();
    const root = tempDir();
    symlinkSync('/', join(root, 'etc'));
    writeFileSync(join(root, 'passwd'), 'rootlevel:x:9:9::/r:/bin/sh\n');
    assert.equal(resolveInRoot(root, '/etc/passwd'), join(root, 'passwd'));
    assert.equal(resolveUser(root, 'rootlevel').uid, 9);
    // A link to the host directory holding the secret files is re-rooted too.
    rmSync(join(root, 'etc'));
    symlinkSync(join(host.dir, 'etc'), join(root, 'etc'));
    assert.throws(() => resolveUser(root, 'hostonly'), { code: 'NO_SUCH_USER' });
    assert.equal(readFileInRoot(root, '/etc/group'), undefined);
  });

  it('`..` chains in links and in the path cannot climb above the rootfs', () => {
    const host = hostSecrets();
    const root = tempDir();
    mkdirSync(join(root, 'etc'));
    const up = '../'.repeat(40);
    symlinkSync(`${up}${host.passwd.slice(1)}`, join(root, 'etc/passwd'));
    symlinkSync(`../../..${host.dir}/etc/group`, join(root, 'etc/group'));
    assert.equal(readFileInRoot(root, '/etc/passwd'), undefined);
    assert.equal(readFileInRoot(root, '/etc/group'), undefined);
    assert.throws(() => resolveUser(root, 'hostonly'), { code: 'NO_SUCH_USER' });
    assert.equal(readFileInRoot(root, `/../../../..${host.passwd}`), undefined);
    assert.equal(resolveInRoot(root, '/../../etc/../..'), root);
  });

  it('a link through a relative directory link to outside is re-rooted at every hop', () => {
    const host = hostSecrets();
    const root = tempDir();
    mkdirSync(join(root, 'etc'));
    mkdirSync(join(root, 'a'));
    symlinkSync('../..', join(root, 'a/up')); // a/up -> the rootfs, not its parent
    symlinkSync(`../a/up/a/up/..${host.passwd}`, join(root, 'etc/passwd'));
    assert.equal(readFileInRoot(root, '/etc/passwd'), undefined);
    assert.equal(resolveInRoot(root, '/a/up/a/up'), root);
    assert.equal(resolveInRoot(root, '/etc/passwd'), join(root, host.passwd));
  });

  it('symbolic link loops fail instead of spinning', () => {
    const root = tempDir();
    mkdirSync(join(root, 'etc'));
    symlinkSync('/etc/group', join(root, 'etc/passwd'));
    symlinkSync('passwd', join(root, 'etc/group'));
    assert.throws(() => resolveUser(root, 'x'), { code: 'ROOTFS_SYMLINK_LOOP', exitCode: 126 });
    symlinkSync('self/x', join(root, 'self'));
    assert.throws(() => resolveInRoot(root, '/self'), { code: 'ROOTFS_SYMLINK_LOOP' });
  });

  it('a chain of 40 links is followed, 41 is a loop', () => {
    const root = tempDir();
    writeFileSync(join(root, 'end'), 'reached');
    for (let i = 0; i < 41; i++) symlinkSync(i === 0 ? '/end' : `/l${i - 1}`, join(root, `l${i}`));
    assert.equal(readFileInRoot(root, '/l39'), 'reached');
    assert.throws(() => readFileInRoot(root, '/l40'), { code: 'ROOTFS_SYMLINK_LOOP' });
  });

  it('/etc/passwd that is a directory or a FIFO is refused, without hanging', () => {
    const root = tempDir();
    mkdirSync(join(root, 'etc/passwd'), { recursive: true });
    assert.throws(() => resolveUser(root, 'x'), { code: 'ROOTFS_NOT_A_FILE' });
    rmSync(join(root, 'etc/passwd'), { recursive: true });
    execFileSync('mkfifo', [join(root, 'etc/passwd')]);
    assert.throws(() => resolveUser(root, 'x'), { code: 'ROOTFS_NOT_A_FILE' });
  });

  it('a path below a regular file or a missing directory is missing', () => {
    const root = tempDir();
    writeFileSync(join(root, 'etc'), 'not a directory');
    assert.equal(readFileInRoot(root, '/etc/passwd'), undefined);
    assert.equal(resolveInRoot(root, '/nope/../x/y'), join(root, 'x/y'));
    assert.equal(resolveUser(root, '3').uid, 3);
  });

  it('relative links inside the rootfs work as in the container', () => {
    const root = tempDir();
    mkdirSync(join(root, 'usr/share/base/etc'), { recursive: true });
    writeFileSync(join(root, 'usr/share/base/etc/passwd'), 'linked:x:77:78::/l:/bin/sh\n');
    symlinkSync('usr/share/base/etc', join(root, 'etc'));
    assert.equal(resolveUser(root, 'linked').gid, 78);
  });
});
