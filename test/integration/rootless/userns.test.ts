/**
 * `--userns keep-id` and `--userns nomap` as the unprivileged user, on the
 * real crun (keep-id on runc too): who the container runs as, who owns the
 * image's files inside, who owns on the host what the container writes to a
 * bind mount, what commit, export and cp carry out of such a container, and
 * that the shifted copy of the image is made once and removed with it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseSubIdFile, rangesFor } from '../../../src/rootless/subid.ts';
import { sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const img = (): string => `${REGISTRY}/busybox:latest`;
const uid = process.getuid!();
const gid = process.getgid!();

function subUidStart(): number {
  const ranges = rangesFor(parseSubIdFile(readFileSync('/etc/subuid', 'utf8'), '/etc/subuid'), {
    name: process.env.USER ?? 'hutchtest',
    id: uid,
  });
  return ranges[0]!.start;
}

function ok(r: Result): Result {
  assert.equal(r.status, 0, r.stderr);
  return r;
}

describe('--userns keep-id and nomap', { skip: NEEDS_REGISTRY }, () => {
  let box: Sandbox;
  let bind: string;
  const h = (args: string[], input?: string): Result => box.hutch(args, input === undefined ? {} : { input });
  const shifted = (): string[] =>
    readdirSync(join(box.root, 'storage', 'overlay', 'layers')).filter((n) =>
      /^[0-9a-f]{64}-[0-9a-f]{16}$/.test(n),
    );

  before(() => {
    box = sandbox({ HUTCH_STORAGE_DRIVER: 'overlay' });
    ok(h(['pull', '-q', img()]));
    bind = join(box.dir, 'bind');
    mkdirSync(bind);
    writeFileSync(join(bind, 'mine'), 'x');
  });
  after(() => {
    box.hutch(['unshare', 'rm', '-rf', bind]);
    box.cleanup();
  });

  for (const runtime of ['crun', 'runc']) {
    it(`keep-id on ${runtime}: runs as the user, with a passwd entry; the image stays root's; the user's files are the user's`, () => {
      const r = ok(
        h([
          '--runtime',
          runtime,
          'run',
          '--rm',
          '--userns',
          'keep-id',
          '-v',
          `${bind}:/w`,
          img(),
          'sh',
          '-c',
          `id -u; id -g; id -un; stat -c %u:%g / /bin/sh /w/mine; touch /w/by-${runtime}`,
        ]),
      );
      const name = process.env.USER ?? 'hutchtest';
      assert.deepEqual(r.stdout.trim().split('\n'), [
        `${uid}`,
        `${gid}`,
        name,
        '0:0',
        '0:0',
        `${uid}:${gid}`,
      ]);
      const st = statSync(join(bind, `by-${runtime}`));
      assert.equal(st.uid, uid);
      assert.equal(st.gid, gid);
    });
  }

  it('keep-id:uid=,gid= keeps the user under other ids; --user 0 is root, whose files go to the first sub-id', () => {
    assert.equal(
      ok(h(['run', '--rm', '--userns', 'keep-id:uid=500,gid=600', img(), 'id', '-u'])).stdout.trim(),
      '500',
    );
    const r = ok(
      h([
        'run',
        '--rm',
        '--userns',
        'keep-id',
        '-u',
        '0',
        '-v',
        `${bind}:/w`,
        img(),
        'sh',
        '-c',
        'id -u; touch /w/by-root',
      ]),
    );
    assert.equal(r.stdout.trim(), '0');
    assert.equal(statSync(join(bind, 'by-root')).uid, subUidStart());
  });

  it('nomap: root inside owns the image, the user is nobody inside and cannot be written as', () => {
    const r = h([
      'run',
      '--rm',
      '--userns',
      'nomap',
      '-v',
      `${bind}:/w`,
      img(),
      'sh',
      '-c',
      'id -u; stat -c %u:%g / /bin/sh /w/mine; cat /proc/self/uid_map; touch /w/nomap',
    ]);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 4), ['0', '0:0', '0:0', '65534:65534']);
    // No line of the container's map reaches namespace id 0, the user.
    for (const line of lines.slice(4)) assert.notEqual(line.trim().split(/\s+/)[1], '0', line);
    assert.match(r.stderr, /Permission denied/);
  });

  it('nomap is refused on runc, before anything is made', () => {
    const before = shifted().length;
    const r = h(['--runtime', 'runc', 'create', '--userns', 'nomap', img(), 'true']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /nomap needs crun/);
    assert.equal(shifted().length, before);
  });

  it('commit, export and cp give the owners the container sees', () => {
    ok(
      h([
        'run',
        '--name',
        'kept',
        '--userns',
        'keep-id',
        img(),
        'sh',
        '-c',
        'mkdir -p /tmp/mine && touch /tmp/mine/f',
      ]),
    );
    ok(h(['start', '-a', 'kept'])); // a second start reuses the mount's owners
    // What the user made inside is theirs in the image; what the image had stays root's.
    ok(h(['commit', 'kept', 'localhost/kept:1']));
    const r = ok(h(['run', '--rm', 'localhost/kept:1', 'stat', '-c', '%u:%g', '/tmp/mine/f', '/bin']));
    assert.deepEqual(r.stdout.trim().split('\n'), [`${uid}:${gid}`, '0:0']);
    const tarFile = join(box.dir, 'kept.tar');
    ok(h(['export', '-o', tarFile, 'kept']));
    const listing = spawnSync('tar', ['--numeric-owner', '-tvf', tarFile], { encoding: 'utf8' }).stdout;
    assert.match(listing, new RegExp(`^\\S+ ${uid}/${gid} .* tmp/mine/f$`, 'm'));
    assert.match(listing, /^\S+ 0\/0 .* bin\/sh/m);
    const cp = ok(h(['cp', 'kept:/tmp/mine', join(box.dir, 'out')]));
    assert.equal(cp.stderr, '');
    // docker cp without -a gives the copy to the user running it.
    assert.equal(statSync(join(box.dir, 'out', 'f')).uid, uid);
    writeFileSync(join(box.dir, 'in'), 'y');
    ok(h(['cp', join(box.dir, 'in'), 'kept:/in']));
    ok(h(['start', '-a', 'kept']));
    const inside = ok(h(['commit', 'kept', 'localhost/kept:2']));
    assert.match(inside.stdout, /^sha256:/);
    const owners = ok(h(['run', '--rm', 'localhost/kept:2', 'stat', '-c', '%u:%g', '/in']));
    assert.equal(owners.stdout.trim(), '0:0', 'cp without -a gives the file to container root');
  });

  it('makes the shifted copy once per image and mapping, and removes it with the image', () => {
    // One each for the mappings the tests above used: keep-id, keep-id:uid=500,gid=600 and nomap.
    assert.equal(shifted().length, 3);
    ok(h(['create', '--name', 'k1', '--userns', 'keep-id', img(), 'true']));
    ok(h(['create', '--name', 'k2', '--userns', 'keep-id', img(), 'true']));
    ok(h(['create', '--name', 'n1', '--userns', 'nomap', img(), 'true']));
    assert.equal(shifted().length, 3);
    ok(h(['rm', 'k1', 'k2', 'n1', 'kept']));
    ok(h(['run', '--rm', img(), 'true']));
    assert.deepEqual(box.problems(), []);
    ok(h(['rmi', 'localhost/kept:1', 'localhost/kept:2', img()]));
    assert.deepEqual(shifted(), []);
    assert.deepEqual(box.problems(), []);
  });
});
