/**
 * Volume snapshots end to end as the unprivileged user, through the real
 * CLI, on two filesystems: the default store's (plain copies, with the
 * warning that says so) and a real btrfs (subvolumes and read-only
 * snapshots). Snapshot, write, rollback restores the exact tree
 * (checksummed); a clone is independent of its origin; rollback is refused
 * while a running container uses the volume and done with -f, which starts
 * it again; send and receive, full then incremental, reproduce the volume in
 * a second store; damaged and mismatched streams are refused and leave
 * nothing; system check finds nothing afterwards.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BTRFS_DIR, NEEDS_BTRFS, isSubvolume } from '../../support/btrfs.ts';
import { sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';
import { streamHeader, treeSum } from '../../support/volumes.ts';

const rootless = process.getuid!() !== 0;

const FILESYSTEMS: { name: string; under: string | undefined; skip: string | false; btrfs: boolean }[] = [
  { name: 'the default store filesystem', under: tmpdir(), skip: false, btrfs: false },
  { name: 'btrfs', under: BTRFS_DIR, skip: NEEDS_BTRFS, btrfs: true },
];

function ok(r: Result, what: string): Result {
  assert.equal(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
  return r;
}

for (const fs of FILESYSTEMS) {
  describe(
    `volume snapshots on ${fs.name}`,
    { skip: rootless ? fs.skip : 'runs as the unprivileged test user only' },
    () => {
      let box: Sandbox;
      let peer: Sandbox;
      let data: string;
      const h = (args: string[]): Result => box.hutch(args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const sh = (b: Sandbox, script: string): void => {
        ok(b.hutch(['unshare', 'sh', '-euc', script]), script);
      };
      const vol = (b: Sandbox, name: string): string => join(b.root, 'volumes', name, '_data');
      const sums: Record<string, string> = {};

      before(() => {
        box = sandbox({}, { under: fs.under });
        peer = sandbox({}, { under: fs.under });
        ok(box.hutch(['volume', 'create', 'app']), 'create');
        data = vol(box, 'app');
        sh(
          box,
          `cd ${data}; printf 'one\\n' > a; mkdir -p d/e; printf 'deep' > d/e/f; ln -s a link; : > empty;` +
            ` printf 'secret' > private; chmod 600 private; chown 1000:1000 d/e/f; mkdir gone; echo x > gone/y`,
        );
      });
      after(() => {
        box?.cleanup();
        peer?.cleanup();
      });

      it('a new volume is a subvolume on btrfs and a directory elsewhere', () => {
        assert.equal(isSubvolume(data), fs.btrfs);
      });

      it('snapshot keeps the content as it was, read-only on btrfs; a plain copy says what it cost', () => {
        sums.s1 = treeSum(box, data);
        const r = ok(h(['volume', 'snapshot', 'app', 's1']), 'snapshot');
        assert.equal(r.stdout.trim(), 's1');
        const snapData = join(box.root, 'volumes/app/snapshots/s1/_data');
        assert.equal(treeSum(box, snapData), sums.s1);
        if (fs.btrfs) {
          assert.ok(isSubvolume(snapData));
          assert.doesNotMatch(r.stderr, /full copy/);
        } else {
          assert.match(r.stderr, /full copy/);
        }
        const again = h(['volume', 'snapshot', 'app', 's1']);
        assert.equal(again.status, 125);
        assert.match(again.stderr, /already has a snapshot s1/);
      });

      it('snapshots lists name, time and size, as a table, a template and JSON; inspect counts them', () => {
        const table = ok(h(['volume', 'snapshots', 'app']), 'snapshots').stdout.split('\n');
        assert.match(table[0]!, /^SNAPSHOT +CREATED +SIZE +KIND/);
        assert.match(
          table[1]!,
          new RegExp(`^s1 +\\d{4}-\\d\\d-\\d\\dT[\\d:]+Z +\\d+B +${fs.btrfs ? 'btrfs' : '(copy|reflink)'}`),
        );
        assert.match(
          ok(h(['volume', 'snapshots', '--format', '{{.Name}}:{{.SizeBytes}}', 'app']), 'fmt').stdout,
          /^s1:17\n$/,
        );
        const json = JSON.parse(ok(h(['volume', 'snapshots', '--json', 'app']), 'json').stdout) as {
          Name: string;
        }[];
        assert.deepEqual(
          json.map((s) => s.Name),
          ['s1'],
        );
        assert.equal(
          ok(h(['volume', 'inspect', '--format', '{{.Snapshots}}', 'app']), 'inspect').stdout.trim(),
          '1',
        );
        const none = h(['volume', 'snapshots', 'nosuch']);
        assert.equal(none.status, 1);
        assert.match(none.stderr, /no such volume: nosuch/);
      });

      it('rollback restores the exact content after writes, deletions and new files', () => {
        sh(box, `cd ${data}; printf 'two\\n' > a; rm -r gone; echo new > added; chmod 700 d`);
        assert.notEqual(treeSum(box, data), sums.s1);
        ok(h(['volume', 'rollback', 'app', 's1']), 'rollback');
        assert.equal(treeSum(box, data), sums.s1);
        assert.equal(isSubvolume(data), fs.btrfs);
        const r = h(['volume', 'rollback', 'app', 'nosuch']);
        assert.equal(r.status, 125);
        assert.match(r.stderr, /volume app has no snapshot nosuch/);
      });

      it('a clone is a volume of its own: writes to either leave the other as it was', () => {
        ok(h(['volume', 'clone', 'app@s1', 'copy']), 'clone');
        const copy = vol(box, 'copy');
        assert.equal(treeSum(box, copy), sums.s1);
        assert.equal(isSubvolume(copy), fs.btrfs);
        sh(box, `echo clone-only > ${copy}/a`);
        assert.equal(treeSum(box, data), sums.s1);
        sh(box, `echo origin-only > ${data}/zz`);
        assert.equal(readFileSync(join(copy, 'a'), 'utf8'), 'clone-only\n');
        assert.equal(existsSync(join(copy, 'zz')), false);
        ok(h(['volume', 'rollback', 'app', 's1']), 'rollback');
        const bad = h(['volume', 'clone', 'app', 'x']);
        assert.equal(bad.status, 125);
        assert.match(bad.stderr, /VOLUME@SNAPSHOT/);
        assert.equal(h(['volume', 'clone', 'app@s1', 'copy']).status, 125);
      });

      it(
        'rollback is refused while a running container uses the volume, and -f stops it, rolls back and starts it again',
        { skip: NEEDS_REGISTRY },
        () => {
          ok(h(['pull', '-q', `${REGISTRY}/busybox:latest`]), 'pull');
          ok(
            h([
              'run',
              '-d',
              '--name',
              'user',
              '-v',
              'app:/data',
              `${REGISTRY}/busybox:latest`,
              'sleep',
              '300',
            ]),
            'run',
          );
          ok(h(['exec', 'user', 'sh', '-c', 'echo from-container > /data/a']), 'exec');
          const refused = h(['volume', 'rollback', 'app', 's1']);
          assert.equal(refused.status, 125);
          assert.match(refused.stderr, /running container\(s\) user use it/);
          assert.match(refused.stderr, /-f/);
          assert.equal(readFileSync(join(data, 'a'), 'utf8'), 'from-container\n');
          const forced = ok(h(['volume', 'rollback', '-f', 'app', 's1']), 'rollback -f');
          assert.match(forced.stderr, /restarted: user/);
          assert.equal(
            ok(h(['inspect', '--format', '{{.State.Running}}', 'user']), 'inspect').stdout.trim(),
            'true',
          );
          assert.equal(ok(h(['exec', 'user', 'cat', '/data/a']), 'cat').stdout, 'one\n');
          ok(h(['rm', '-f', 'user']), 'rm');
          assert.equal(treeSum(box, data), sums.s1);
        },
      );

      it('send and receive, full then incremental, reproduce the volume in a second store', () => {
        const full = join(box.dir, 'full.stream');
        const incr = join(box.dir, 'incr.stream');
        writeFileSync(
          full,
          ok(box.hutch(['volume', 'send', 'app@s1'], { encoding: 'latin1' }), 'send').stdout,
          'latin1',
        );
        assert.equal(streamHeader(full).format, 'tar');
        sh(
          box,
          `cd ${data}; printf 'two\\n' > a; rm -r gone; echo new > added; chmod 700 d; ln -sf added link; touch -d @1000000000 empty`,
        );
        ok(h(['volume', 'snapshot', 'app', 's2']), 'snapshot s2');
        sums.s2 = treeSum(box, data);
        writeFileSync(
          incr,
          ok(box.hutch(['volume', 'send', '--from', 's1', 'app@s2'], { encoding: 'latin1' }), 'send incr')
            .stdout,
          'latin1',
        );
        const ih = streamHeader(incr);
        assert.equal(ih.base?.name, 's1');
        assert.deepEqual(ih.deleted, ['gone']);

        assert.equal(
          ok(
            peer.hutch(['volume', 'receive', 'replica'], { input: readFileSync(full) }),
            'receive',
          ).stdout.trim(),
          'replica@s1',
        );
        assert.equal(treeSum(peer, vol(peer, 'replica')), sums.s1);
        assert.equal(isSubvolume(vol(peer, 'replica')), fs.btrfs);
        ok(peer.hutch(['volume', 'receive', 'replica'], { input: readFileSync(incr) }), 'receive incr');
        assert.equal(treeSum(peer, vol(peer, 'replica')), sums.s2);
        assert.equal(treeSum(peer, join(peer.root, 'volumes/replica/snapshots/s1/_data')), sums.s1);
        const names = ok(peer.hutch(['volume', 'snapshots', '-q', 'replica']), 'snapshots').stdout;
        assert.equal(names, 's1\ns2\n');
        // The replica's snapshots are the sender's: the next increment applies on either side.
        const twice = peer.hutch(['volume', 'receive', 'replica'], { input: readFileSync(incr) });
        assert.equal(twice.status, 125);
        assert.match(twice.stderr, /already has a snapshot s2/);
      });

      it('a damaged stream is refused and leaves nothing half-made', () => {
        const full = readFileSync(join(box.dir, 'full.stream'));
        const nl = full.indexOf(0x0a, full.indexOf(0x0a) + 1);
        // A byte of file content flipped (the tar is still a tar): only the digest can tell.
        const body = full.indexOf(Buffer.from('deep'), nl);
        const flipped = Buffer.from(full);
        flipped[body] = 'D'.charCodeAt(0);
        const r = peer.hutch(['volume', 'receive', 'broken'], { input: flipped });
        assert.equal(r.status, 125);
        assert.match(r.stderr, /does not match its snapshot's digest/);
        const cut = peer.hutch(['volume', 'receive', 'broken'], { input: full.subarray(0, nl + 700) });
        assert.equal(cut.status, 125);
        const junk = peer.hutch(['volume', 'receive', 'broken'], { input: Buffer.from('not a stream\n') });
        assert.equal(junk.status, 125);
        assert.match(junk.stderr, /does not start as a stream of hutch volume send/);
        assert.equal(peer.hutch(['volume', 'inspect', 'broken']).status, 1);
        assert.deepEqual(
          readdirSync(join(peer.root, 'volumes')).filter((n) => n.startsWith('.tmp-')),
          [],
        );
      });

      it('an increment made from another base is refused, and the volume stays as it was', () => {
        ok(peer.hutch(['volume', 'create', 'other']), 'create');
        sh(peer, `echo mine > ${vol(peer, 'other')}/mine`);
        ok(peer.hutch(['volume', 'snapshot', 'other', 's1']), 'snapshot');
        const before = treeSum(peer, vol(peer, 'other'));
        const incr = readFileSync(join(box.dir, 'incr.stream'));
        const r = peer.hutch(['volume', 'receive', 'other'], { input: incr });
        assert.equal(r.status, 125);
        assert.match(r.stderr, /changes since snapshot s1, and other@s1 here is another snapshot/);
        assert.equal(treeSum(peer, vol(peer, 'other')), before);
        assert.equal(ok(peer.hutch(['volume', 'snapshots', '-q', 'other']), 'ls').stdout, 's1\n');
        const none = peer.hutch(['volume', 'receive', 'fresh'], { input: incr });
        assert.equal(none.status, 125);
        assert.match(none.stderr, /there is no volume fresh here/);
      });

      it('snapshot rm and volume rm remove snapshots; system check finds nothing in either store', () => {
        ok(h(['volume', 'snapshot', 'rm', 'app', 's2']), 'snapshot rm');
        assert.equal(ok(h(['volume', 'snapshots', '-q', 'app']), 'ls').stdout, 's1\n');
        const gone = h(['volume', 'snapshot', 'rm', 'app', 's2']);
        assert.equal(gone.status, 125);
        for (const b of [box, peer]) {
          const r = ok(b.hutch(['system', 'check', '--format', 'json']), 'check');
          assert.deepEqual((JSON.parse(r.stdout) as { findings: unknown[] }).findings, []);
        }
        ok(h(['volume', 'rm', 'app', 'copy']), 'rm');
        assert.equal(existsSync(join(box.root, 'volumes', 'app')), false);
        assert.deepEqual(
          readdirSync(join(box.root, 'volumes')).filter(
            (n) => !n.startsWith('.locks') && n !== 'volumes.lock',
          ),
          [],
        );
      });

      it('system check reports what a killed command left among snapshots, and --repair removes it', () => {
        ok(peer.hutch(['volume', 'clone', 'replica@s1', 'scratch']), 'clone');
        sh(
          peer,
          `mkdir -p ${join(peer.root, 'volumes/scratch/snapshots/.tmp-snap-x-1-ab/_data')} ${join(peer.root, 'volumes/scratch/snapshots/orphan')}`,
        );
        const r = ok(peer.hutch(['system', 'check', '--format', 'json']), 'check');
        const found = (
          JSON.parse(r.stdout) as { findings: { severity: string; what: string; detail: string }[] }
        ).findings;
        assert.ok(
          found.some((f) => f.what === 'temporary file' && f.detail.endsWith('.tmp-snap-x-1-ab')),
          r.stdout,
        );
        assert.ok(
          found.some((f) => f.what === 'volume snapshot' && f.detail.includes('orphan')),
          r.stdout,
        );
        assert.ok(found.every((f) => f.severity === 'garbage'));
        ok(peer.hutch(['system', 'check', '--repair']), 'repair');
        const again = ok(peer.hutch(['system', 'check', '--format', 'json']), 'check');
        assert.deepEqual((JSON.parse(again.stdout) as { findings: unknown[] }).findings, []);
      });
    },
  );
}
