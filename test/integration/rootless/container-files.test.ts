/**
 * A container's files as the unprivileged user, on overlay, vfs, btrfs and fuse-overlayfs: `diff`
 * after adding, changing and deleting; `commit` (the new image runs, keeps
 * --change, survives save/load and push/pull); `export`; `cp` both ways
 * with docker's destination rules, tar streams on stdin and stdout,
 * ownership, and no way out of the container's root.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BTRFS_DIR, NEEDS_BTRFS } from '../../support/btrfs.ts';
import { HUTCH, sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';
import { fileEntry, tarOf } from '../../unit/storage/extract/tar-build.ts';

const img = (): string => `${REGISTRY}/busybox:latest`;

/** A shell pipeline with the sandbox's environment (for binary output: tar). */
function sh(box: Sandbox, script: string, input?: Buffer): Result {
  const r = spawnSync('sh', ['-c', script], {
    env: { ...box.env, HUTCH: HUTCH },
    encoding: 'utf8',
    timeout: 120_000,
    ...(input ? { input } : {}),
  });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function ok(r: Result): Result {
  assert.equal(r.status, 0, r.stderr);
  return r;
}

/** fuse-overlayfs needs its program and a /dev/fuse this user may open (the test setup makes it 0666). */
const NEEDS_FUSE =
  spawnSync('sh', ['-c', 'command -v fuse-overlayfs && test -r /dev/fuse -a -w /dev/fuse']).status === 0
    ? false
    : 'needs fuse-overlayfs and a usable /dev/fuse';

for (const driver of ['overlay', 'vfs', 'btrfs', 'fuse-overlayfs']) {
  // btrfs needs a store on the test btrfs (test/setup/btrfs.ts).
  const where = driver === 'btrfs' ? { under: BTRFS_DIR } : {};
  const skip =
    NEEDS_REGISTRY || (driver === 'btrfs' && NEEDS_BTRFS) || (driver === 'fuse-overlayfs' && NEEDS_FUSE);
  describe(`diff, commit and export on ${driver}`, { skip }, () => {
    let box: Sandbox;
    const h = (args: string[], input?: string): Result =>
      box.hutch(['--storage-driver', driver, ...args], input === undefined ? {} : { input });
    before(() => {
      box = sandbox({ HUTCH_STORAGE_DRIVER: driver }, where);
      ok(h(['pull', '-q', img()]));
      ok(
        h([
          'run',
          '--name',
          'changed',
          img(),
          'sh',
          '-c',
          'echo new > /added; echo extra >> /etc/passwd; rm /bin/ls; mkdir -p /newdir/sub; echo f > /newdir/sub/f',
        ]),
      );
    });
    after(() => box.cleanup());

    it('lists added, changed and deleted paths, sorted, on a stopped container', () => {
      const r = ok(h(['diff', 'changed']));
      assert.equal(
        r.stdout,
        [
          'A /added',
          'C /bin',
          'D /bin/ls',
          'C /etc',
          'C /etc/passwd',
          'A /newdir',
          'A /newdir/sub',
          'A /newdir/sub/f',
          '',
        ].join('\n'),
      );
      const json = JSON.parse(ok(h(['diff', '--format', 'json', 'changed'])).stdout) as Record<
        string,
        string[]
      >;
      assert.deepEqual(json.deleted, ['/bin/ls']);
    });

    it("shows nothing for a container that changed nothing (the runtime's mount points are not changes)", () => {
      ok(h(['run', '--name', 'idle', img(), 'true']));
      assert.equal(ok(h(['diff', 'idle'])).stdout, '');
      ok(h(['create', '--name', 'never', img(), 'true']));
      assert.equal(ok(h(['diff', 'never'])).stdout, '');
      const r = h(['diff', 'no-such-container']);
      assert.equal(r.status, 125);
      assert.match(r.stderr, /no such container/);
    });

    it('commits the changes as an image that runs and shows them', () => {
      const r = ok(
        h(['commit', '-a', 'Tester <t@example.com>', '-m', 'my change', 'changed', 'files/img:v1']),
      );
      assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
      const run = ok(
        h([
          'run',
          '--rm',
          'files/img:v1',
          'sh',
          '-c',
          'cat /added /newdir/sub/f; tail -1 /etc/passwd; test ! -e /bin/ls && echo gone',
        ]),
      );
      assert.equal(run.stdout, 'new\nf\nextra\ngone\n');
      const parentLayers = JSON.parse(
        ok(h(['inspect', '--format', '{{json .RootFS.Layers}}', img()])).stdout,
      ) as string[];
      const layers = JSON.parse(
        ok(h(['inspect', '--format', '{{json .RootFS.Layers}}', 'files/img:v1'])).stdout,
      ) as string[];
      assert.equal(layers.length, parentLayers.length + 1);
      assert.equal(
        ok(h(['inspect', '--format', '{{.Author}}', 'files/img:v1'])).stdout.trim(),
        'Tester <t@example.com>',
      );
      assert.match(ok(h(['history', 'files/img:v1'])).stdout, /my change/);
      // The container's command is the image's command, as docker commit keeps it.
      assert.match(
        ok(h(['inspect', '--format', '{{json .Config.Cmd}}', 'files/img:v1'])).stdout,
        /echo new > \/added/,
      );
      assert.deepEqual(box.problems(), []);
    });

    it('applies --change, and a commit without changes adds no layer', () => {
      const r = ok(h(['commit', '-c', 'CMD ["echo","hi"]', '-c', 'ENV GREETING=hello', 'idle', 'files/hi']));
      const id = r.stdout.trim();
      assert.equal(ok(h(['run', '--rm', 'files/hi'])).stdout, 'hi\n');
      assert.equal(ok(h(['run', '--rm', id, 'sh', '-c', 'echo $GREETING'])).stdout, 'hello\n');
      const parentLayers = JSON.parse(
        ok(h(['inspect', '--format', '{{json .RootFS.Layers}}', img()])).stdout,
      ) as string[];
      const layers = JSON.parse(
        ok(h(['inspect', '--format', '{{json .RootFS.Layers}}', 'files/hi'])).stdout,
      ) as string[];
      assert.deepEqual(layers, parentLayers);
      const bad = h(['commit', '-c', 'FROM busybox', 'idle']);
      assert.equal(bad.status, 125);
      assert.match(bad.stderr, /FROM cannot be applied/);
    });

    it('a committed image survives save and load', () => {
      const file = join(box.dir, `saved-${driver}.tar`);
      ok(h(['save', '-o', file, 'files/img:v1']));
      ok(h(['rmi', 'files/img:v1']));
      ok(h(['load', '-i', file]));
      assert.equal(ok(h(['run', '--rm', 'files/img:v1', 'cat', '/added'])).stdout, 'new\n');
    });

    it('a committed image survives push and pull (OCI and Docker schema 2), into a fresh store', () => {
      const other = sandbox({ HUTCH_STORAGE_DRIVER: driver }, where);
      try {
        for (const format of ['oci', 'v2s2']) {
          const remote = `${REGISTRY}/files-${process.pid}-${driver}/img:${format}`;
          ok(h(['tag', 'files/img:v1', remote]));
          ok(h(['push', '--format', format, remote]));
          ok(other.hutch(['pull', '-q', remote]));
          assert.equal(ok(other.hutch(['run', '--rm', remote, 'cat', '/newdir/sub/f'])).stdout, 'f\n');
        }
      } finally {
        other.cleanup();
      }
    });

    it('exports the whole root filesystem as a tar, to stdout or a file, never to a terminal', () => {
      const r = ok(sh(box, `"$HUTCH" export changed | tar -t`));
      const names = r.stdout.split('\n');
      assert.ok(names.includes('bin/busybox'), 'bin/busybox is in the export');
      assert.ok(names.includes('added'));
      assert.ok(names.includes('newdir/sub/f'));
      assert.ok(!names.includes('bin/ls'), 'deleted files are not');
      const file = join(box.dir, `export-${driver}.tar`);
      ok(h(['export', '-o', file, 'changed']));
      assert.equal(ok(sh(box, `tar -xOf ${file} added`)).stdout, 'new\n');
      const t = spawnSync('script', ['-qec', `${HUTCH} export changed`, '/dev/null'], {
        env: box.env,
        encoding: 'utf8',
        timeout: 60_000,
      });
      if (t.error === undefined) {
        assert.equal(t.status, 125);
        assert.match(t.stdout, /cowardly refusing to save to a terminal/);
      }
    });
  });
}

describe('cp', { skip: NEEDS_REGISTRY }, () => {
  let box: Sandbox;
  let work: string;
  const h = (args: string[], input?: string): Result => box.hutch(args, input === undefined ? {} : { input });
  /** The content of a file inside the (running) container `svc`. */
  const cat = (path: string): string => ok(h(['exec', 'svc', 'cat', path])).stdout;
  before(() => {
    box = sandbox();
    ok(h(['pull', '-q', img()]));
    ok(h(['run', '-d', '--name', 'svc', img(), 'sleep', '600']));
    ok(
      h([
        'exec',
        'svc',
        'sh',
        '-c',
        'mkdir -p /data/sub /home/u && echo one > /data/one && echo two > /data/sub/two && ' +
          'echo mine > /home/u/f && chown -R 1000:1000 /home/u && ln -s ../../../../../../.. /esc && ln -s /data/one /link',
      ]),
    );
    work = join(box.dir, 'work');
    mkdirSync(join(work, 'src/inner'), { recursive: true });
    writeFileSync(join(work, 'src/a.txt'), 'A\n');
    writeFileSync(join(work, 'src/inner/b.txt'), 'B\n');
    writeFileSync(join(work, 'file.txt'), 'F\n');
  });
  after(() => {
    box.hutch(['rm', '-f', 'svc']);
    // `cp -a` made files of sub-ids: only root in the namespace may remove them.
    box.hutch(['unshare', 'rm', '-rf', work]);
    box.cleanup();
  });

  it('copies a file into a container: to a new name, into a directory, over a file', () => {
    ok(h(['cp', join(work, 'file.txt'), 'svc:/tmp/renamed.txt']));
    assert.equal(cat('/tmp/renamed.txt'), 'F\n');
    ok(h(['cp', join(work, 'file.txt'), 'svc:/tmp']));
    assert.equal(cat('/tmp/file.txt'), 'F\n');
    ok(h(['cp', join(work, 'src/a.txt'), 'svc:/tmp/file.txt']));
    assert.equal(cat('/tmp/file.txt'), 'A\n');
    // Owned by the container's root, whoever owned them on the host.
    assert.equal(ok(h(['exec', 'svc', 'stat', '-c', '%u:%g', '/tmp/file.txt'])).stdout.trim(), '0:0');
    let r = h(['cp', join(work, 'file.txt'), 'svc:/no/such/dir/']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /must exist/);
    r = h(['cp', join(work, 'file.txt'), 'svc:/tmp/missing-dir/x']);
    assert.equal(r.status, 125);
  });

  it('copies a directory into a container: made when missing, into one that exists, or its content with /.', () => {
    ok(h(['cp', join(work, 'src'), 'svc:/tmp/newdir']));
    assert.equal(cat('/tmp/newdir/inner/b.txt'), 'B\n');
    ok(h(['exec', 'svc', 'mkdir', '/tmp/existing']));
    ok(h(['cp', join(work, 'src'), 'svc:/tmp/existing']));
    assert.equal(cat('/tmp/existing/src/a.txt'), 'A\n');
    ok(h(['exec', 'svc', 'mkdir', '/tmp/contents']));
    ok(h(['cp', `${join(work, 'src')}/.`, 'svc:/tmp/contents']));
    assert.equal(cat('/tmp/contents/a.txt'), 'A\n');
    const r = h(['cp', join(work, 'src'), 'svc:/data/one']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /cannot copy a directory to a file/);
  });

  it('copies from a container: files and directories, owned by the user unless -a', () => {
    ok(h(['cp', 'svc:/data/one', join(work, 'one.txt')]));
    assert.equal(readFileSync(join(work, 'one.txt'), 'utf8'), 'one\n');
    ok(h(['cp', 'svc:/data', join(work, 'data-copy')]));
    assert.equal(readFileSync(join(work, 'data-copy/sub/two'), 'utf8'), 'two\n');
    mkdirSync(join(work, 'into'));
    ok(h(['cp', 'svc:/data', join(work, 'into')]));
    assert.deepEqual(readdirSync(join(work, 'into/data')).sort(), ['one', 'sub']);
    ok(h(['cp', 'svc:/home/u', join(work, 'u-plain')]));
    assert.equal(lstatSync(join(work, 'u-plain/f')).uid, process.getuid!());
    ok(h(['cp', '-a', 'svc:/home/u', join(work, 'u-archive')]));
    assert.notEqual(
      lstatSync(join(work, 'u-archive/f')).uid,
      process.getuid!(),
      'the sub-id behind uid 1000',
    );
    // A symbolic link is copied as one, or followed with -L.
    ok(h(['cp', 'svc:/link', join(work, 'link-copy')]));
    assert.ok(lstatSync(join(work, 'link-copy')).isSymbolicLink());
    ok(h(['cp', '-L', 'svc:/link', join(work, 'link-followed')]));
    assert.equal(readFileSync(join(work, 'link-followed'), 'utf8'), 'one\n');
    const r = h(['cp', 'svc:/no-such-file', join(work, 'x')]);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /could not find the file \/no-such-file in container svc/);
  });

  it('streams a tar on stdout with - and extracts one from stdin with -', () => {
    const out = ok(sh(box, `"$HUTCH" cp svc:/data - | tar -t`));
    assert.deepEqual(out.stdout.split('\n').filter(Boolean).sort(), [
      'data/',
      'data/one',
      'data/sub/',
      'data/sub/two',
    ]);
    const tar = spawnSync('tar', ['-C', work, '-c', 'src'], { maxBuffer: 1 << 24 }).stdout;
    ok(h(['exec', 'svc', 'mkdir', '/tmp/from-tar']));
    ok(sh(box, `"$HUTCH" cp - svc:/tmp/from-tar`, tar));
    assert.equal(cat('/tmp/from-tar/src/inner/b.txt'), 'B\n');
    const r = sh(box, `"$HUTCH" cp - svc:/data/one`, tar);
    assert.equal(r.status, 125, 'a tar goes into a directory');
  });

  it('copies into and out of a stopped container', () => {
    ok(h(['create', '--name', 'stopped', img(), 'cat', '/copied.txt']));
    ok(h(['cp', join(work, 'file.txt'), 'stopped:/copied.txt']));
    assert.equal(ok(h(['start', '-a', 'stopped'])).stdout, 'F\n');
    ok(h(['cp', 'stopped:/copied.txt', join(work, 'back.txt')]));
    assert.equal(readFileSync(join(work, 'back.txt'), 'utf8'), 'F\n');
    assert.match(ok(h(['diff', 'stopped'])).stdout, /^A \/copied\.txt$/m);
  });

  it('never leads out of the container root: ../ paths, links to / and ../ tar members', () => {
    // `..` stops at the container's /: this is the container's passwd, not the host's.
    ok(h(['cp', 'svc:/../../../../etc/passwd', join(work, 'passwd')]));
    assert.equal(readFileSync(join(work, 'passwd'), 'utf8'), cat('/etc/passwd'));
    // A link to `../../..` inside the container is resolved inside it.
    const marker = join(box.dir, 'escaped.txt');
    const r1 = h(['cp', join(work, 'file.txt'), `svc:/esc${marker}`]);
    assert.equal(r1.status, 125, 'the directory does not exist in the container');
    assert.equal(existsSync(marker), false, 'nothing written on the host');
    ok(h(['cp', join(work, 'file.txt'), 'svc:/esc/landed.txt']));
    assert.equal(cat('/landed.txt'), 'F\n');
    assert.equal(existsSync('/landed.txt'), false);
    // A tar whose members climb out is refused before anything is written.
    const tar = tarOf(fileEntry('../../../../../../tmp/evil-from-cp', 'evil'));
    const r = sh(box, `"$HUTCH" cp - svc:/tmp`, tar);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /climbs out/);
    assert.equal(existsSync('/tmp/evil-from-cp'), false);
    // Between two containers, or with no container at all: refused, as docker does.
    assert.match(h(['cp', 'svc:/data/one', 'svc:/tmp']).stderr, /between containers is not supported/);
    assert.match(h(['cp', join(work, 'file.txt'), join(work, 'f2')]).stderr, /at least one container/);
  });
});
