/**
 * Store snapshots on the zfs driver as root, on Debian's zfs-fuse with a
 * file-backed pool (HUTCH_TEST_ZFS), through the real CLI: a snapshot,
 * then a pull, new containers, writes to a volume and a container's root,
 * removals of a container and a volume, a new volume; rollback
 * gives back exactly the images, containers, volumes (checksummed) and
 * roots of the snapshot, and `system check` finds nothing. Rollback to a
 * snapshot with newer ones is refused (ZFS rolls back only to the newest);
 * a rollback killed part way is finished by the next; snapshot rm destroys
 * its ZFS snapshot and what only it held.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkConsistency, killAtRandom } from '../../support/fault.ts';
import { HUTCH, sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';
import { allFindings, ok, sortedLines, storeState } from '../../support/store-state.ts';
import type { StoreState } from '../../support/store-state.ts';
import { treeSum as exactSum } from '../../support/volumes.ts';
import { NEEDS_ZFS, childDataset, destroyDataset, zfs } from '../../support/zfs.ts';

/** A tree's checksum; see zfs-volumes.test.ts for why a read right after a write may be tried again. */
function treeSum(box: Sandbox, dir: string): string {
  for (let attempt = 0; ; attempt++) {
    try {
      return exactSum(box, dir);
    } catch (e) {
      if (attempt >= 3 || !/file changed as we read it/.test((e as Error).message)) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
}

/** Datasets and snapshots under the store's dataset, `st-` ones (store snapshots) only. */
function storeSnapshotsInPool(dataset: string): string[] {
  const r = zfs(['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', dataset]);
  return r.stdout.split('\n').filter((l) => l.includes('@st-'));
}

describe('store snapshots on the zfs driver as root', { skip: NEEDS_ZFS || NEEDS_REGISTRY }, () => {
  let box: Sandbox;
  let dataset: string;
  const h = (args: string[]): Result => box.hutch(args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const busybox = `${REGISTRY}/busybox:latest`;
  const state = (): StoreState => storeState(box);
  const data = (v: string): string => join(box.root, 'volumes', v, '_data');
  const findings = (): string[] => allFindings(box);
  let before1: ReturnType<typeof state>;
  let volSum: string;

  before(() => {
    dataset = childDataset('store');
    box = sandbox();
    mkdirSync(box.dir, { recursive: true });
    writeFileSync(join(box.dir, 'hutch.toml'), `[storage]\nzfs_dataset = "${dataset}"\n`);
    box.env.HUTCH_CONFIG = join(box.dir, 'hutch.toml');
    ok(h(['pull', '-q', busybox]), 'pull');
    ok(h(['volume', 'create', 'app']), 'volume create');
    ok(
      h([
        'run',
        '--name',
        'keep',
        '--network',
        'none',
        '-v',
        'app:/data',
        busybox,
        'sh',
        '-c',
        'echo one > /data/f; echo mine > /own',
      ]),
      'run',
    );
    ok(h(['volume', 'create', 'gone']), 'volume create');
    ok(h(['create', '--name', 'removed', '--network', 'none', busybox, 'true']), 'create');
    ok(h(['start', 'removed']), 'start');
    ok(h(['volume', 'snapshot', 'app', 'own']), 'volume snapshot before');
  });
  after(() => {
    box?.cleanup();
    if (dataset) destroyDataset(dataset);
  });

  it('snapshot takes the store in one recursive ZFS snapshot and lists it', () => {
    before1 = state();
    volSum = treeSum(box, data('app'));
    assert.equal(ok(h(['system', 'snapshot', 'before-pull']), 'snapshot').stdout.trim(), 'before-pull');
    const list = ok(
      h(['system', 'snapshots', '--format', '{{.Name}} {{.Images}} {{.Containers}} {{.Volumes}}']),
      'ls',
    );
    assert.equal(list.stdout.trim(), 'before-pull 1 2 2');
    const tags = new Set(storeSnapshotsInPool(dataset).map((n) => n.slice(n.indexOf('@'))));
    assert.equal(tags.size, 1, 'one tag on every dataset');
    assert.ok(storeSnapshotsInPool(dataset).some((n) => n.startsWith(`${dataset}/volumes/app@`)));
    assert.deepEqual(findings(), []);
  });

  it('rollback restores images, containers, volumes and roots exactly, removed ones included', () => {
    ok(h(['pull', '-q', `${REGISTRY}/multilayer:5`]), 'pull another');
    ok(h(['create', '--name', 'later', '--network', 'none', `${REGISTRY}/multilayer:5`, 'true']), 'create');
    ok(
      h([
        'run',
        '--rm',
        '--network',
        'none',
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
    ok(h(['volume', 'snapshot', 'app', 'after']), 'volume snapshot after');
    writeFileSync(join(box.dir, 'added'), 'after the snapshot\n');
    ok(h(['cp', join(box.dir, 'added'), 'keep:/added']), 'cp into keep');
    ok(h(['rm', 'removed']), 'rm a container');
    ok(h(['volume', 'rm', 'gone']), 'rm a volume');
    // A new volume of a removed one's name: the rollback brings back the old one.
    ok(h(['volume', 'create', 'gone']), 'volume create again');
    assert.notDeepEqual(state(), before1);

    ok(h(['system', 'rollback', 'before-pull']), 'rollback');
    assert.deepEqual(state(), before1);
    assert.equal(treeSum(box, data('app')), volSum);
    assert.ok(!existsSync(join(box.root, 'volumes', 'extra')));
    // The volume's own snapshot from before stays; the one ZFS's rollback destroyed is gone.
    assert.equal(ok(h(['volume', 'snapshots', '-q', 'app']), 'volume snapshots').stdout.trim(), 'own');
    const own = ok(
      h(['run', '--rm', '--network', 'none', '-v', 'app:/data', busybox, 'cat', '/data/f']),
      'read',
    );
    assert.equal(own.stdout, 'one\n');
    assert.match(ok(h(['cp', 'keep:/own', '-']), 'cp own').stdout, /mine\n/);
    assert.notEqual(h(['cp', 'keep:/added', '-']).status, 0);
    ok(h(['start', 'removed']), 'the removed container runs again');
    assert.deepEqual(findings(), []);
  });

  it('rollback to a snapshot with newer ones is refused: ZFS rolls back only to the newest', () => {
    ok(h(['system', 'snapshot', 'newer']), 'snapshot');
    const r = h(['system', 'rollback', 'before-pull']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /only to the newest snapshot, and before-pull has newer ones: newer/);
    assert.match(r.stderr, /hutch system snapshot rm newer/);
    ok(h(['system', 'snapshot', 'rm', 'newer']), 'snapshot rm');
    assert.deepEqual(findings(), []);
  });

  it('a rollback killed part way is finished by the next', async () => {
    for (const delay of [150, 600, 1500]) {
      ok(h(['volume', 'create', `extra${delay}`]), 'volume create');
      ok(h(['create', '--name', `late${delay}`, '--network', 'none', busybox, 'true']), 'create');
      ok(
        h([
          'run',
          '--rm',
          '--network',
          'none',
          '-v',
          'app:/data',
          busybox,
          'sh',
          '-c',
          `echo ${delay} > /data/f`,
        ]),
        'write',
      );
      const child = spawn(HUTCH, ['system', 'rollback', 'before-pull'], { env: box.env, stdio: 'ignore' });
      const closed = new Promise((r) => child.on('close', r));
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await closed;
      ok(h(['system', 'rollback', 'before-pull']), `rollback after a kill at ${delay} ms`);
      assert.deepEqual(state(), before1, `after a kill at ${delay} ms`);
      assert.equal(treeSum(box, data('app')), volSum);
      assert.deepEqual(findings(), [], `after a kill at ${delay} ms`);
    }
  });

  it('a snapshot killed part way leaves a snapshot whole or absent, and system check clears the rest', async () => {
    const env = box.env as Record<string, string>;
    await killAtRandom({
      command: [HUTCH, 'system', 'snapshot', 'k'],
      env,
      runs: 4,
      minDelayMs: 50,
      maxDelayMs: 1500,
      seed: 5,
      afterEach: async () => {
        await checkConsistency([HUTCH, 'system', 'check', '--repair', '--format', 'json'], {
          env,
          allow: (f) => typeof f === 'object' && f.severity === 'garbage',
        });
        const listed = sortedLines(ok(h(['system', 'snapshots', '-q']), 'snapshots'));
        // One tag per listed snapshot on the parent: nothing half-made stays in the pool.
        assert.equal(
          storeSnapshotsInPool(dataset).filter((n) => n.startsWith(`${dataset}@`)).length,
          listed.length,
        );
        if (listed.includes('k')) ok(h(['system', 'snapshot', 'rm', 'k']), 'rm k');
        assert.deepEqual(findings(), []);
      },
    });
  });

  it('snapshot rm destroys its ZFS snapshots and what only they held', () => {
    ok(h(['rm', 'removed']), 'rm');
    ok(h(['volume', 'rm', 'gone']), 'volume rm');
    ok(h(['system', 'snapshot', 'rm', 'before-pull']), 'snapshot rm');
    assert.deepEqual(storeSnapshotsInPool(dataset), []);
    const r = zfs(['list', '-H', '-o', 'name,hutch:removed', '-r', dataset]);
    assert.doesNotMatch(r.stdout, /\t1$/m, 'no retired dataset is left');
    assert.doesNotMatch(r.stdout, /\.kept-/, 'no kept volume is left');
    assert.deepEqual(findings(), []);
  });

  it('system reset destroys the store snapshots with the datasets, and keeps the parent', () => {
    ok(h(['system', 'snapshot', 'last']), 'snapshot');
    ok(h(['system', 'reset', '-f']), 'reset');
    assert.deepEqual(storeSnapshotsInPool(dataset), []);
    assert.equal(zfs(['list', '-H', '-o', 'name', '-r', dataset]).stdout.trim(), dataset);
  });
});
