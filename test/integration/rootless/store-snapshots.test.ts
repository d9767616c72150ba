/**
 * Store snapshots end to end as the unprivileged user, through the real
 * CLI, on the test btrfs: a snapshot, then a pull, new containers, writes
 * to a volume and a container's root, a new volume; rollback gives back
 * exactly the images, containers, volumes (checksummed) and roots of the
 * snapshot, and `system check` finds nothing. Rollback is refused while a
 * container runs and -f stops it; a rollback a killed command left
 * unfinished is reported and finished by the next; snapshot rm; and a
 * store on another driver is refused with the reason.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BTRFS_DIR, NEEDS_BTRFS } from '../../support/btrfs.ts';
import { HUTCH, sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';
import { allFindings, ok, storeState } from '../../support/store-state.ts';
import type { StoreState } from '../../support/store-state.ts';
import { treeSum } from '../../support/volumes.ts';

const rootless = process.getuid!() !== 0;

describe(
  'store snapshots on btrfs',
  { skip: !rootless ? 'runs as the unprivileged test user only' : NEEDS_BTRFS || NEEDS_REGISTRY },
  () => {
    let box: Sandbox;
    const h = (args: string[]): Result => box.hutch(args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const busybox = `${REGISTRY}/busybox:latest`;
    const state = (): StoreState => storeState(box);
    const data = (v: string): string => join(box.root, 'volumes', v, '_data');
    const findings = (): string[] => allFindings(box);
    let before1: ReturnType<typeof state>;
    let volSum: string;

    before(() => {
      box = sandbox({}, { under: BTRFS_DIR });
      ok(h(['pull', '-q', busybox]), 'pull');
      ok(h(['volume', 'create', 'app']), 'volume create');
      ok(
        h([
          'run',
          '--name',
          'keep',
          '-v',
          'app:/data',
          busybox,
          'sh',
          '-c',
          'echo one > /data/f; echo mine > /own',
        ]),
        'run',
      );
    });
    after(() => box?.cleanup());

    it('snapshot takes the store and lists it', () => {
      before1 = state();
      volSum = treeSum(box, data('app'));
      assert.equal(ok(h(['system', 'snapshot', 'before-pull']), 'snapshot').stdout.trim(), 'before-pull');
      const list = ok(
        h(['system', 'snapshots', '--format', '{{.Name}} {{.Images}} {{.Containers}} {{.Volumes}}']),
        'ls',
      );
      assert.equal(list.stdout.trim(), 'before-pull 1 1 1');
      const again = h(['system', 'snapshot', 'before-pull']);
      assert.equal(again.status, 125);
      assert.match(again.stderr, /exists already/);
      assert.deepEqual(findings(), []);
    });

    it('rollback restores images, containers, volumes and roots exactly', () => {
      ok(h(['pull', '-q', `${REGISTRY}/multilayer:5`]), 'pull another');
      ok(h(['create', '--name', 'later', `${REGISTRY}/multilayer:5`, 'true']), 'create');
      ok(
        h([
          'run',
          '--name',
          'writer',
          '-v',
          'app:/data',
          busybox,
          'sh',
          '-c',
          'echo two > /data/f; echo new > /data/g',
        ]),
        'run',
      );
      ok(h(['volume', 'create', 'extra']), 'volume create');
      ok(h(['volume', 'snapshot', 'app', 'own']), 'volume snapshot');
      writeFileSync(join(box.dir, 'added'), 'after the snapshot\n');
      ok(h(['cp', join(box.dir, 'added'), 'keep:/added']), 'cp into keep');
      assert.notDeepEqual(state(), before1);

      ok(h(['system', 'rollback', 'before-pull']), 'rollback');
      assert.deepEqual(state(), before1);
      assert.equal(treeSum(box, data('app')), volSum);
      assert.ok(!existsSync(join(box.root, 'volumes', 'extra')));
      // A volume's own snapshots are its history, not the store's: they stay.
      assert.equal(ok(h(['volume', 'snapshots', '-q', 'app']), 'volume snapshots').stdout.trim(), 'own');
      const own = ok(h(['run', '--rm', '-v', 'app:/data', busybox, 'cat', '/data/f']), 'read volume');
      assert.equal(own.stdout, 'one\n');
      // The container's root is the one it had: its own file, and not what came after.
      assert.match(ok(h(['cp', 'keep:/own', '-']), 'cp own').stdout, /mine\n/);
      assert.notEqual(h(['cp', 'keep:/added', '-']).status, 0);
      assert.deepEqual(findings(), []);
    });

    it('rollback is refused while a container runs; -f stops it first', () => {
      ok(h(['run', '-d', '--name', 'svc', busybox, 'sleep', '300']), 'run -d');
      const refused = h(['system', 'rollback', 'before-pull']);
      assert.equal(refused.status, 125);
      assert.match(refused.stderr, /while containers run: svc/);
      assert.match(refused.stderr, /-f/);
      const forced = ok(h(['system', 'rollback', '-f', 'before-pull']), 'rollback -f');
      assert.match(forced.stderr, /stopped: svc/);
      assert.deepEqual(state(), before1);
      assert.deepEqual(findings(), []);
    });

    it('an unfinished rollback is reported by system check and finished by the next rollback', () => {
      ok(h(['volume', 'create', 'extra']), 'volume create');
      // What a rollback killed after its first step leaves: its journal.
      ok(
        h([
          'unshare',
          'sh',
          '-c',
          `printf '{"name":"before-pull"}' > ${join(box.root, 'snapshots', '.rollback.json')}`,
        ]),
        'journal',
      );
      assert.ok(findings().some((f) => /problem: store rollback: .*before-pull/.test(f)));
      const refused = h(['system', 'snapshot', 'other']);
      assert.equal(refused.status, 125);
      assert.match(refused.stderr, /did not finish/);
      ok(h(['system', 'rollback', 'before-pull']), 'rollback');
      assert.deepEqual(state(), before1);
      assert.deepEqual(findings(), []);
    });

    it("rollback waits for a volume's own lock (a snapshot, receive or copy-up of it in progress)", async () => {
      const lock = join(box.root, 'volumes', '.locks', 'app');
      // Another command working on volume app, as flock(2) holds it: the lock hutch's volume commands take.
      const holder = spawn(HUTCH, ['unshare', 'flock', lock, 'sleep', '3'], {
        env: box.env,
        stdio: 'ignore',
      });
      const ended = new Promise((r) => holder.on('close', r));
      try {
        for (let i = 0; i < 100 && h(['unshare', 'flock', '-n', lock, 'true']).status === 0; i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        const t0 = Date.now();
        ok(h(['system', 'rollback', 'before-pull']), 'rollback');
        const waited = Date.now() - t0;
        assert.ok(waited >= 1500, `the rollback took ${waited} ms: it did not wait for the volume's lock`);
      } finally {
        holder.kill('SIGKILL');
        await ended;
      }
      assert.deepEqual(state(), before1);
      assert.deepEqual(findings(), []);
    });

    it('a rollback killed part way is finished by the next, volumes keeping their own snapshots', async () => {
      for (const delay of [60, 180, 400, 800]) {
        ok(h(['volume', 'create', `extra${delay}`]), 'volume create');
        ok(h(['create', '--name', `late${delay}`, busybox, 'true']), 'create');
        ok(h(['run', '--rm', '-v', 'app:/data', busybox, 'sh', '-c', `echo ${delay} > /data/f`]), 'write');
        const child = spawn(HUTCH, ['system', 'rollback', 'before-pull'], { env: box.env, stdio: 'ignore' });
        // Listened for at once: a rollback quicker than the delay has closed before the kill.
        const closed = new Promise((r) => child.on('close', r));
        await new Promise((r) => setTimeout(r, delay));
        child.kill('SIGKILL');
        await closed;
        ok(h(['system', 'rollback', 'before-pull']), `rollback after a kill at ${delay} ms`);
        assert.deepEqual(state(), before1, `after a kill at ${delay} ms`);
        assert.equal(treeSum(box, data('app')), volSum);
        assert.equal(ok(h(['volume', 'snapshots', '-q', 'app']), 'snapshots').stdout.trim(), 'own');
        assert.deepEqual(findings(), [], `after a kill at ${delay} ms`);
      }
    });

    it('system check reports a snapshot missing a part it lists, and snapshot rm clears it', () => {
      ok(h(['system', 'snapshot', 'broken']), 'snapshot');
      ok(h(['unshare', 'rm', '-rf', join(box.root, 'snapshots', 'broken', 'containers')]), 'damage');
      assert.ok(findings().some((f) => /problem: store snapshot broken: missing containers/.test(f)));
      ok(h(['system', 'snapshot', 'rm', 'broken']), 'snapshot rm');
      assert.deepEqual(findings(), []);
    });

    it('snapshot rm removes it, read-only subvolumes and all', () => {
      ok(h(['system', 'snapshot', 'rm', 'before-pull']), 'snapshot rm');
      assert.equal(ok(h(['system', 'snapshots', '-q']), 'ls').stdout.trim(), '');
      assert.ok(!existsSync(join(box.root, 'snapshots', 'before-pull')));
      const gone = h(['system', 'rollback', 'before-pull']);
      assert.equal(gone.status, 125);
      assert.match(gone.stderr, /no store snapshot named before-pull/);
      assert.deepEqual(state(), before1);
      assert.deepEqual(findings(), []);
    });
  },
);

describe('store snapshots on other drivers', { skip: rootless ? false : 'runs as the test user' }, () => {
  let box: Sandbox;
  before(() => {
    box = sandbox({ HUTCH_STORAGE_DRIVER: 'overlay' }, { under: tmpdir() });
  });
  after(() => box?.cleanup());

  it('are refused with the reason and what works instead', () => {
    const r = box.hutch(['system', 'snapshot', 's1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(r.status, 125);
    assert.match(r.stderr, /store snapshots need the btrfs or zfs storage driver; this store uses overlay/);
    assert.match(r.stderr, /hutch volume snapshot VOLUME NAME/);
  });
});
