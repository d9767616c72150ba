/**
 * Named volumes on the zfs driver as root, on Debian's zfs-fuse with a
 * file-backed pool (HUTCH_TEST_ZFS): a volume is a dataset, its snapshots
 * are ZFS snapshots; snapshot → write → rollback restores the exact tree
 * (checksummed); a clone is independent of its origin and outlives it;
 * send then receive into a second zfs store reproduces the volume, full
 * then incremental, with zfs send's stream and with the portable format
 * (into a vfs store too); system check reports what killed commands leave
 * and repairs it; system df shows the dataset's compression ratio.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkConsistency, killAtRandom } from '../../support/fault.ts';
import { HUTCH, sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';
import { streamHeader, treeSum as exactSum } from '../../support/volumes.ts';
import { NEEDS_ZFS, childDataset, destroyDataset, zfs } from '../../support/zfs.ts';

function ok(r: Result, what: string): Result {
  assert.equal(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
  return r;
}

/** A store whose hutch.toml names its own child dataset of the test pool. */
function zfsBox(tag: string): { box: Sandbox; dataset: string } {
  const dataset = childDataset(tag);
  const box = sandbox();
  const config = join(box.dir, 'hutch.toml');
  mkdirSync(box.dir, { recursive: true });
  writeFileSync(config, `[storage]\nzfs_dataset = "${dataset}"\n`);
  box.env.HUTCH_CONFIG = config;
  return { box, dataset };
}

/**
 * The tree's checksum. zfs-fuse as Debian configures it has the kernel
 * keep attributes for an hour (fuse-attr-timeout = 3600 in /etc/zfs/zfsrc):
 * right after a write, tar may see a directory's cached times change under
 * it and stop with "file changed as we read it". A second reading sees
 * them settled; any other failure stands.
 */
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

const data = (b: Sandbox, name: string): string => join(b.root, 'volumes', name, '_data');

/** `zfs list` of everything under the store's volumes: names relative to it. */
function volumeDatasets(dataset: string, type: 'filesystem' | 'snapshot'): string[] {
  const r = zfs(['list', '-H', '-t', type, '-o', 'name', '-r', `${dataset}/volumes`]);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((n) => n.slice(`${dataset}/volumes`.length).replace(/^\//, ''))
    .filter((n) => n !== '');
}

function sh(box: Sandbox, script: string): void {
  ok(box.hutch(['unshare', 'sh', '-euc', script]), script);
}

function findings(box: Sandbox, repair = false): { what: string; detail: string }[] {
  const r = ok(box.hutch(['system', 'check', ...(repair ? ['--repair'] : []), '--format', 'json']), 'check');
  return (JSON.parse(r.stdout) as { findings: { what: string; detail: string }[] }).findings;
}

describe('volumes on the zfs driver as root', { skip: NEEDS_ZFS }, () => {
  let box: Sandbox;
  let dataset: string;
  before(() => {
    ({ box, dataset } = zfsBox('vol'));
    ok(box.hutch(['volume', 'create', 'db']), 'create');
    sh(box, `cd ${data(box, 'db')}; echo one > a; mkdir d; echo two > d/b; chown 1000:1000 d/b; mkfifo p`);
  });
  after(() => {
    box?.cleanup();
    if (dataset) destroyDataset(dataset);
  });

  it('keeps a volume as a dataset and a snapshot as a ZFS snapshot; rollback restores the exact tree', () => {
    assert.deepEqual(volumeDatasets(dataset, 'filesystem'), ['db']);
    const before = treeSum(box, data(box, 'db'));
    ok(box.hutch(['volume', 'snapshot', 'db', 's1']), 'snapshot');
    const rec = JSON.parse(readFileSync(join(box.root, 'volumes/db/snapshots/s1/snapshot.json'), 'utf8')) as {
      id: string;
      method: string;
    };
    assert.equal(rec.method, 'zfs');
    assert.deepEqual(volumeDatasets(dataset, 'snapshot'), [`db@${rec.id}`]);
    assert.match(ok(box.hutch(['volume', 'snapshots', 'db']), 'list').stdout, /s1 .* zfs/);
    sh(box, `cd ${data(box, 'db')}; echo changed > a; rm -r d; echo new > c`);
    assert.notEqual(treeSum(box, data(box, 'db')), before);
    ok(box.hutch(['volume', 'rollback', 'db', 's1']), 'rollback');
    assert.equal(treeSum(box, data(box, 'db')), before);
  });

  it('refuses to roll back past newer snapshots, which ZFS would destroy, and says what to do', () => {
    ok(box.hutch(['volume', 'snapshot', 'db', 's2']), 'snapshot s2');
    const r = box.hutch(['volume', 'rollback', 'db', 's1']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /newest snapshot.*s2/);
    assert.match(r.stderr, /hutch volume snapshot rm db s2/);
    ok(box.hutch(['volume', 'snapshot', 'rm', 'db', 's2']), 'rm s2');
    ok(box.hutch(['volume', 'rollback', 'db', 's1']), 'rollback now');
  });

  it('clones a snapshot into an independent volume, which outlives its origin', () => {
    const origin = treeSum(box, data(box, 'db'));
    ok(box.hutch(['volume', 'clone', 'db@s1', 'copy']), 'clone');
    const originOf = zfs(['get', '-H', '-o', 'value', 'origin', `${dataset}/volumes/copy`]).stdout.trim();
    assert.match(originOf, new RegExp(`^${dataset}/volumes/db@`));
    assert.equal(treeSum(box, data(box, 'copy')), origin);
    sh(box, `echo clone-only > ${data(box, 'copy')}/x`);
    assert.equal(treeSum(box, data(box, 'db')), origin, 'a write to the clone stays in the clone');
    sh(box, `echo origin-only > ${data(box, 'db')}/y`);
    const copySum = treeSum(box, data(box, 'copy'));
    // A snapshot a clone stands on goes from hutch at once, from ZFS with its last clone.
    ok(box.hutch(['volume', 'snapshot', 'rm', 'db', 's1']), 'snapshot rm');
    assert.doesNotMatch(ok(box.hutch(['volume', 'snapshots', 'db']), 'list').stdout, /s1/);
    ok(box.hutch(['volume', 'rm', 'db']), 'rm origin');
    assert.deepEqual(volumeDatasets(dataset, 'filesystem'), ['copy']);
    assert.equal(treeSum(box, data(box, 'copy')), copySum);
    assert.equal(readFileSync(join(data(box, 'copy'), 'x'), 'utf8'), 'clone-only\n');
    assert.deepEqual(findings(box), []);
    ok(box.hutch(['volume', 'rm', 'copy']), 'rm clone');
    assert.deepEqual(volumeDatasets(dataset, 'filesystem'), []);
    assert.deepEqual(volumeDatasets(dataset, 'snapshot'), []);
  });

  it('reports datasets and ZFS snapshots that killed commands left, and repairs them', () => {
    ok(box.hutch(['volume', 'create', 'kept']), 'create');
    // What a create killed before its record's rename leaves, and a snapshot killed before its record.
    zfs(['create', '-o', 'mountpoint=none', `${dataset}/volumes/ghost`]);
    zfs(['snapshot', `${dataset}/volumes/kept@0123456789abcdef`]);
    assert.doesNotMatch(ok(box.hutch(['volume', 'ls']), 'ls').stdout, /ghost/);
    const found = findings(box, true).map((f) => f.detail);
    assert.ok(
      found.some((d) => d.includes('/volumes/ghost')),
      found.join('\n'),
    );
    assert.ok(
      found.some((d) => d.includes('kept@0123456789abcdef')),
      found.join('\n'),
    );
    assert.deepEqual(findings(box), []);
    assert.deepEqual(volumeDatasets(dataset, 'filesystem'), ['kept']);
    // The same name is free for a volume again.
    zfs(['create', '-o', 'mountpoint=none', `${dataset}/volumes/ghost`]);
    ok(box.hutch(['volume', 'create', 'ghost']), 'create over a leftover');
    sh(box, `echo here > ${data(box, 'ghost')}/f`);
    assert.equal(readFileSync(join(data(box, 'ghost'), 'f'), 'utf8'), 'here\n');
  });

  it('system df shows the dataset with its compression ratio', () => {
    sh(box, `yes hutch | head -c 4000000 > ${data(box, 'kept')}/t; sync`);
    const pattern = new RegExp(`ZFS dataset ${dataset}: .* used, .* logical, compression ([\\d.]+)x`);
    // ZFS counts a write once its transaction group is on disk: seconds later, not at sync(2) on zfs-fuse.
    let text = '';
    for (let i = 0; i < 30; i++) {
      text = ok(box.hutch(['system', 'df']), 'df').stdout;
      const m = pattern.exec(text);
      assert.ok(m, text);
      if (Number(m[1]) > 1) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    }
    assert.fail(`a repeated text should compress:\n${text}`);
  });
});

describe('volume send and receive on the zfs driver as root', { skip: NEEDS_ZFS }, () => {
  let box: Sandbox;
  let peer: Sandbox;
  let portable: Sandbox;
  let plain: Sandbox;
  const datasets: string[] = [];
  const stream = (args: string[], file: string): string => {
    writeFileSync(
      file,
      ok(box.hutch(['volume', 'send', ...args], { encoding: 'latin1' }), 'send').stdout,
      'latin1',
    );
    return file;
  };
  const receive = (b: Sandbox, name: string, file: string): Result =>
    b.hutch(['volume', 'receive', name], { input: readFileSync(file) });
  let sumA = '';
  let sumB = '';

  before(() => {
    let ds: string;
    ({ box, dataset: ds } = zfsBox('send'));
    datasets.push(ds);
    ({ box: peer, dataset: ds } = zfsBox('recv'));
    datasets.push(ds);
    ({ box: portable, dataset: ds } = zfsBox('precv'));
    datasets.push(ds);
    plain = sandbox({ HUTCH_STORAGE_DRIVER: 'vfs' });
    ok(box.hutch(['volume', 'create', 'db']), 'create');
    sh(box, `cd ${data(box, 'db')}; echo one > a; mkdir d; echo two > d/b; chown 1000:1000 d/b; mkfifo p`);
    ok(box.hutch(['volume', 'snapshot', 'db', 'a']), 'snapshot a');
    sh(box, `cd ${data(box, 'db')}; echo three > a; rm -r d; echo four > c; ln c hard`);
    ok(box.hutch(['volume', 'snapshot', 'db', 'b']), 'snapshot b');
    // Each snapshot's tree as a fresh mount shows it: the live volume's directory times may be
    // the kernel's cached ones (see treeSum), and the receiving side mounts afresh.
    for (const snap of ['a', 'b']) ok(box.hutch(['volume', 'clone', `db@${snap}`, `at-${snap}`]), 'clone');
    sumA = treeSum(box, data(box, 'at-a'));
    sumB = treeSum(box, data(box, 'at-b'));
  });
  after(() => {
    for (const b of [box, peer, portable, plain]) b?.cleanup();
    for (const d of datasets) destroyDataset(d);
  });

  it('sends with zfs send and receives with zfs receive, full then incremental', () => {
    const full = stream(['db@a'], join(box.dir, 'full'));
    const incr = stream(['--from', 'a', 'db@b'], join(box.dir, 'incr'));
    assert.equal(streamHeader(full).format, 'zfs');
    assert.equal(streamHeader(incr).format, 'zfs');
    ok(receive(peer, 'db', full), 'receive full');
    assert.equal(treeSum(peer, data(peer, 'db')), sumA);
    ok(receive(peer, 'db', incr), 'receive incr');
    assert.equal(treeSum(peer, data(peer, 'db')), sumB);
    const snaps = ok(peer.hutch(['volume', 'snapshots', 'db']), 'snapshots').stdout;
    assert.match(snaps, /\na .* zfs\n/);
    assert.match(snaps, /\nb .* zfs\n/);
    assert.deepEqual(findings(peer), []);
  });

  it('a store snapshot taken since stops a volume rollback and an increment, and says so', () => {
    ok(box.hutch(['volume', 'snapshot', 'db', 'c']), 'snapshot c');
    const incr = stream(['--from', 'b', 'db@c'], join(box.dir, 'incr-c'));
    ok(peer.hutch(['system', 'snapshot', 'pin']), 'store snapshot');
    const received = receive(peer, 'db', incr);
    assert.equal(received.status, 125);
    assert.match(received.stderr, /a store snapshot taken since holds the volume/);
    const rolled = peer.hutch(['volume', 'rollback', 'db', 'b']);
    assert.equal(rolled.status, 125);
    assert.match(rolled.stderr, /a store snapshot taken since holds it/);
    assert.match(rolled.stderr, /hutch system snapshot rm/);
    ok(peer.hutch(['system', 'snapshot', 'rm', 'pin']), 'store snapshot rm');
    ok(receive(peer, 'db', incr), 'receive once the store snapshot is gone');
    assert.deepEqual(findings(peer), []);
  });

  it('sends the portable format with --portable, which a zfs store and a vfs store receive', () => {
    const full = stream(['--portable', 'db@a'], join(box.dir, 'pfull'));
    const incr = stream(['--portable', '--from', 'a', 'db@b'], join(box.dir, 'pincr'));
    assert.equal(streamHeader(full).format, 'tar');
    for (const b of [portable, plain]) {
      ok(receive(b, 'db', full), 'receive full');
      assert.equal(treeSum(b, data(b, 'db')), sumA);
      ok(receive(b, 'db', incr), 'receive incr');
      assert.equal(treeSum(b, data(b, 'db')), sumB);
      assert.deepEqual(findings(b), []);
    }
    assert.match(ok(portable.hutch(['volume', 'snapshots', 'db']), 'snapshots').stdout, /\nb .* zfs\n/);
  });

  it('refuses a zfs stream where it cannot apply it, and a damaged one changes nothing', () => {
    const full = join(box.dir, 'full');
    const r = receive(plain, 'other', full);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /made by zfs send, which only root on a store with the zfs driver can receive/);
    assert.match(r.stderr, /--portable/);
    const cut = join(box.dir, 'cut');
    writeFileSync(cut, readFileSync(full).subarray(0, 2000));
    assert.equal(receive(peer, 'cut', cut).status, 125);
    assert.doesNotMatch(ok(peer.hutch(['volume', 'ls']), 'ls').stdout, /cut/);
    assert.deepEqual(findings(peer), []);
  });
});

describe('volume commands killed at random moments on the zfs driver', { skip: NEEDS_ZFS }, () => {
  let box: Sandbox;
  let dataset: string;
  let stream = '';
  before(() => {
    ({ box, dataset } = zfsBox('kill'));
    ok(box.hutch(['volume', 'create', 'db']), 'create');
    sh(box, `cd ${data(box, 'db')}; for i in $(seq 1 200); do echo $i > f$i; done; mkdir d; echo x > d/y`);
    ok(box.hutch(['volume', 'snapshot', 'db', 's']), 'snapshot');
    stream = join(box.dir, 'stream');
    writeFileSync(
      stream,
      ok(box.hutch(['volume', 'send', '--portable', 'db@s'], { encoding: 'latin1' }), 'send').stdout,
      'latin1',
    );
  });
  after(() => {
    box?.cleanup();
    if (dataset) destroyDataset(dataset);
  });

  /** After a kill: no problem, garbage repaired, and every dataset under volumes/ is a listed volume's. */
  const settle = async (): Promise<void> => {
    const env = box.env as Record<string, string>;
    await checkConsistency([HUTCH, 'system', 'check', '--repair', '--format', 'json'], {
      env,
      allow: (f) => typeof f === 'object' && f.severity === 'garbage',
    });
    await checkConsistency([HUTCH, 'system', 'check', '--format', 'json'], { env });
    const listed = ok(box.hutch(['volume', 'ls', '-q']), 'ls')
      .stdout.split('\n')
      .filter(Boolean)
      .sort();
    assert.deepEqual(volumeDatasets(dataset, 'filesystem').sort(), listed);
    for (const v of listed) {
      const mounted = statSync(data(box, v)).dev !== statSync(join(data(box, v), '..')).dev;
      assert.ok(mounted, `volume ${v}'s dataset is mounted once system check repaired`);
    }
  };

  // exec: the pid killed is hutch's own, stdin the stream.
  const cases = (): [string, string[], string][] => [
    ['clone', [HUTCH, 'volume', 'clone', 'db@s', 'copy'], 'copy'],
    ['receive', ['sh', '-c', 'exec "$0" volume receive got < "$1"', HUTCH, stream], 'got'],
  ];
  for (const [what, made] of [
    ['clone', 'copy'],
    ['receive', 'got'],
  ] as const) {
    it(`a ${what} leaves the volume whole or absent`, async () => {
      // The snapshot's tree as a fresh mount shows it (the live volume's times may be cached: see treeSum).
      ok(box.hutch(['volume', 'clone', 'db@s', 'ref']), 'reference clone');
      const expected = treeSum(box, data(box, 'ref'));
      ok(box.hutch(['volume', 'rm', 'ref']), 'rm reference');
      await killAtRandom({
        command: cases().find(([w]) => w === what)![1],
        env: box.env as Record<string, string>,
        runs: 5,
        minDelayMs: 30,
        maxDelayMs: 900,
        seed: what.length,
        afterEach: async () => {
          await settle();
          if (
            ok(box.hutch(['volume', 'ls', '-q']), 'ls')
              .stdout.split('\n')
              .includes(made)
          ) {
            assert.equal(treeSum(box, data(box, made)), expected, `${made} is whole`);
            ok(box.hutch(['volume', 'rm', made]), 'rm');
          }
        },
      });
    });
  }

  it('a snapshot leaves a snapshot whole or absent', async () => {
    let n = 0;
    await killAtRandom({
      command: [HUTCH, 'volume', 'snapshot', 'db', 'k'],
      env: box.env as Record<string, string>,
      runs: 5,
      minDelayMs: 30,
      maxDelayMs: 600,
      seed: 7,
      afterEach: async () => {
        await settle();
        const snaps = ok(box.hutch(['volume', 'snapshots', '-q', 'db']), 'snapshots').stdout;
        if (/^k$/m.test(snaps)) ok(box.hutch(['volume', 'snapshot', 'rm', 'db', 'k']), `rm ${n++}`);
        // ZFS holds exactly the snapshots hutch lists.
        assert.equal(volumeDatasets(dataset, 'snapshot').length, 1);
      },
    });
  });
});

describe('a container on a zfs volume as root', { skip: NEEDS_ZFS || NEEDS_REGISTRY }, () => {
  let box: Sandbox;
  let dataset: string;
  before(() => {
    ({ box, dataset } = zfsBox('ctr'));
  });
  after(() => {
    box?.cleanup();
    if (dataset) destroyDataset(dataset);
  });

  it('writes into the dataset, and rollback brings back what it overwrote', () => {
    const image = `${REGISTRY}/busybox:latest`;
    ok(box.hutch(['pull', '-q', image]), 'pull');
    const run = (script: string): string =>
      ok(
        box.hutch(['run', '--rm', '--network', 'none', '-v', 'logs:/data', image, 'sh', '-c', script]),
        script,
      ).stdout;
    run('echo first > /data/f');
    assert.deepEqual(volumeDatasets(dataset, 'filesystem'), ['logs']);
    ok(box.hutch(['volume', 'snapshot', 'logs', 'good']), 'snapshot');
    run('echo second > /data/f');
    ok(box.hutch(['volume', 'rollback', 'logs', 'good']), 'rollback');
    assert.equal(run('cat /data/f'), 'first\n');
  });
});
