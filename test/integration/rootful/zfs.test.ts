/**
 * The zfs driver as root, on Debian's zfs-fuse with a file-backed pool (the
 * test setup's HUTCH_TEST_ZFS): chosen from zfs_dataset in hutch.toml;
 * layers and container roots are datasets, clones keep the image apart from
 * what containers write; whiteouts, opaque directories and hard links land
 * as in other drivers; diff, commit and export work; rm and rmi destroy the
 * datasets, in any order the engine removes layers; a killed pull leaves no
 * half-made layer in sight; a store keeps its driver and its dataset; and
 * forcing zfs where it cannot work says why and what to do.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertDiffHas, exportedEntries } from '../../support/driver-checks.ts';
import { checkConsistency, killAtRandom } from '../../support/fault.ts';
import { HUTCH, sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY, pushed } from '../../support/images.ts';
import {
  NEEDS_ZFS,
  childDataset,
  datasetsUnder,
  destroyDataset,
  liveDatasetsUnder,
  zfs,
} from '../../support/zfs.ts';
import { MULTILAYER_EXPECT } from '../../setup/images-multilayer.ts';

const image = (): string => `${REGISTRY}/multilayer:5`;
const LAYER_NAME = /^[a-f0-9]{64}$/;

function ok(r: Result): Result {
  assert.equal(r.status, 0, r.stderr);
  return r;
}

function layersDir(box: Sandbox): string {
  return join(box.root, 'storage', 'zfs', 'layers');
}

/** multilayer:5's chain IDs, bottom first (OCI: each is the digest of the one below, a space, and its diff ID). */
function multilayerChain(): string[] {
  const ids: string[] = [];
  for (const { diffId } of pushed('multilayer', '5').layers) {
    const below = ids.at(-1);
    ids.push(
      below ? createHash('sha256').update(`sha256:${below} ${diffId}`).digest('hex') : diffId.slice(7),
    );
  }
  return ids;
}

/** The layer datasets of a store hutch counts (retired ones aside: see liveDatasetsUnder). */
function layerDatasets(dataset: string): string[] {
  return liveDatasetsUnder(dataset)
    .filter((n) => n.startsWith('layers/'))
    .map((n) => n.slice('layers/'.length));
}

/** A layer's tree: layers rest unmounted (the driver mounts one when it reads it), so mount it here. */
function layerTree(box: Sandbox, dataset: string, id: string): string {
  zfs(['mount', `${dataset}/layers/${id}`]); // "already mounted" is fine
  return join(layersDir(box), id);
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

describe('zfs driver as root', { skip: NEEDS_ZFS || NEEDS_REGISTRY }, () => {
  let box: Sandbox;
  let dataset: string;
  before(() => {
    ({ box, dataset } = zfsBox('main'));
  });
  after(() => {
    box.cleanup();
    destroyDataset(dataset);
  });

  it('is chosen from zfs_dataset in hutch.toml, and info and doctor say so', () => {
    const info = JSON.parse(ok(box.hutch(['info', '--format', 'json'])).stdout) as {
      Store: { GraphDriverName: string; DriverReason: string; ZfsDataset?: string };
    };
    assert.equal(info.Store.GraphDriverName, 'zfs');
    assert.match(info.Store.DriverReason, /zfs_dataset is set to/);
    const doctor = JSON.parse(box.hutch(['doctor', '--format', 'json']).stdout) as {
      checks: { id: string; status: string; reason: string }[];
    };
    const check = (id: string) => doctor.checks.find((c) => c.id === id);
    assert.equal(check('store.zfs')?.status, 'PASS', check('store.zfs')?.reason);
    assert.match(check('store.driver')?.reason ?? '', /^zfs: /);
    ok(box.hutch(['pull', '-q', image()]));
    const meta = JSON.parse(readFileSync(join(box.root, 'store.json'), 'utf8')) as { driver?: string };
    assert.equal(meta.driver, 'zfs');
  });

  it('keeps each layer as a dataset cloned from the one below: whiteouts apply to the child only', () => {
    const chain = multilayerChain();
    assert.deepEqual(layerDatasets(dataset).sort(), [...chain].sort());
    for (const [i, id] of chain.entries()) {
      const origin = zfs(['get', '-H', '-o', 'value', 'origin', `${dataset}/layers/${id}`]).stdout.trim();
      assert.equal(origin, i === 0 ? '-' : `${dataset}/layers/${chain[i - 1]}@hutch`);
    }
    const top = layerTree(box, dataset, chain.at(-1)!);
    for (const p of MULTILAYER_EXPECT.present) assert.ok(existsSync(join(top, p)), `${p} is in the image`);
    for (const p of MULTILAYER_EXPECT.absent)
      assert.ok(!existsSync(join(top, p)), `${p} is gone from the image`);
    for (const [p, text] of Object.entries(MULTILAYER_EXPECT.contents))
      assert.equal(readFileSync(join(top, p), 'utf8'), text);
    const third = layerTree(box, dataset, chain[2]!);
    assert.ok(
      existsSync(join(third, 'data/remove-me.txt')),
      'a deletion reaches only the layer that made it',
    );
    assert.ok(existsSync(join(third, 'opaque/sub/old2.txt')), 'an opaque directory hides only in its layer');
  });

  it('runs a container on a clone whose writes never reach the image; hard links stay links', () => {
    ok(
      box.hutch([
        'run',
        '--name',
        'writer',
        '--network',
        'none',
        image(),
        'sh',
        '-c',
        'echo changed > /data/keep.txt; echo new > /added; rm /data/a.bin; ln /added /linked',
      ]),
    );
    const id = ok(box.hutch(['inspect', '--format', '{{.Id}}', 'writer'])).stdout.trim();
    const root = join(box.root, 'storage', 'zfs', 'containers', id, 'rootfs');
    const origin = zfs(['get', '-H', '-o', 'value', 'origin', `${dataset}/containers/${id}`]).stdout.trim();
    assert.equal(origin, `${dataset}/layers/${multilayerChain().at(-1)}@hutch`);
    assert.equal(readFileSync(join(root, 'data/keep.txt'), 'utf8'), 'changed\n');
    assert.equal(statSync(join(root, 'added')).ino, statSync(join(root, 'linked')).ino);
    const top = layerTree(box, dataset, multilayerChain().at(-1)!);
    assert.equal(readFileSync(join(top, 'data/keep.txt'), 'utf8'), 'v2\n');
    assert.ok(existsSync(join(top, 'data/a.bin')));
    assert.ok(!existsSync(join(top, 'added')));
    const fresh = ok(box.hutch(['run', '--rm', '--network', 'none', image(), 'cat', '/data/keep.txt']));
    assert.equal(fresh.stdout, 'v2\n', 'another container starts from the image, not from the first one');
    assert.deepEqual(box.problems(), [], 'a stopped container keeps its root mounted, by design');
  });

  it("diff, commit and export see the container's changes, hard links included", () => {
    assertDiffHas(box, 'writer', ['C /data', 'C /data/keep.txt', 'D /data/a.bin', 'A /added', 'A /linked']);
    ok(box.hutch(['commit', 'writer', 'committed:1']));
    const r = ok(
      box.hutch([
        'run',
        '--rm',
        '--network',
        'none',
        'committed:1',
        'sh',
        '-c',
        'cat /added /data/keep.txt; ls /data; [ /added -ef /linked ] && echo linked',
      ]),
    );
    assert.equal(r.stdout, 'new\nchanged\nb.bin\nc.bin\nd.bin\nkeep.txt\nlinked\n');
    const names = exportedEntries(box, 'writer');
    assert.ok(names.some((n) => n.replace(/^\.?\//, '') === 'added'));
    assert.ok(!names.some((n) => n.replace(/^\.?\//, '') === 'data/a.bin'));
  });

  it('rm and rmi destroy every dataset, though layers are removed bottom first; system check finds nothing', () => {
    const id = ok(box.hutch(['inspect', '--format', '{{.Id}}', 'writer'])).stdout.trim();
    // The image goes while its container still clones its top layer: the layers wait for it.
    ok(box.hutch(['rmi', '-f', image()]));
    ok(box.hutch(['rm', 'writer']));
    assert.ok(!existsSync(join(box.root, 'storage', 'zfs', 'containers', id)));
    ok(box.hutch(['rmi', 'committed:1']));
    assert.deepEqual(liveDatasetsUnder(dataset).sort(), ['', 'containers', 'layers']);
    // A directory may stay where a retired dataset is still busy elsewhere (see liveDatasetsUnder): never a mount of ours.
    for (const n of readdirSync(layersDir(box)))
      assert.equal(statSync(join(layersDir(box), n)).dev, statSync(layersDir(box)).dev, `${n} is no mount`);
    assert.deepEqual(box.problems(), []);
  });

  it('SIGKILL at random moments of a pull never leaves a half-made layer in sight, and the next pull completes', async () => {
    const env = box.env as Record<string, string>;
    const started = Date.now();
    ok(box.hutch(['pull', '-q', image()]));
    const full = Date.now() - started;
    ok(box.hutch(['rmi', '-f', image()]));
    const chain = multilayerChain();
    await killAtRandom({
      command: [HUTCH, 'pull', '-q', image()],
      env,
      runs: 6,
      minDelayMs: 20,
      maxDelayMs: Math.max(100, full),
      seed: 13,
      afterEach: async (r, i) => {
        assert.ok(r.killed || r.exitCode === 0, `run ${i} ended with ${r.exitCode}: ${r.stderr}`);
        await checkConsistency([HUTCH, 'system', 'check', '--format', 'json'], { env });
        // system check opened the store: the killed pull's temporary dataset is destroyed.
        const names = layerDatasets(dataset);
        assert.deepEqual(
          names.filter((n) => n.startsWith('.')),
          [],
          'no temporary dataset left',
        );
        for (const n of names) assert.ok(LAYER_NAME.test(n) && chain.includes(n), `${n} is a layer`);
        box.hutch(['rmi', '-f', image()]);
      },
    });
    ok(box.hutch(['pull', '-q', image()]));
    const top = layerTree(box, dataset, chain.at(-1)!);
    for (const p of MULTILAYER_EXPECT.present) assert.ok(existsSync(join(top, p)), p);
    ok(box.hutch(['system', 'check', '--repair']));
    assert.deepEqual(box.problems(), []);
  });

  it('a dataset another mount namespace keeps busy is destroyed by a later command, and never blocks its layer pulled again', async () => {
    const chain = multilayerChain();
    ok(box.hutch(['run', '--name', 'held', '--network', 'none', image(), 'true']));
    const id = ok(box.hutch(['inspect', '--format', '{{.Id}}', 'held'])).stdout.trim();
    layerTree(box, dataset, chain.at(-1)!); // the top layer mounted too, so the copy holds it
    // A mount namespace made now copies both mounts, as a rootless user's pause process would.
    const holder = spawn('unshare', ['-m', '--propagation', 'private', 'sleep', '60'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    try {
      ok(box.hutch(['rm', 'held']));
      ok(box.hutch(['rmi', '-f', image()]));
      assert.ok(
        !liveDatasetsUnder(dataset).includes(`containers/${id}`),
        'the root is no container of hutch',
      );
      assert.deepEqual(layerDatasets(dataset), [], 'no layer of hutch left');
      ok(box.hutch(['pull', '-q', image()]));
      assert.deepEqual(layerDatasets(dataset).sort(), [...chain].sort(), 'pulled again whole');
      const top = layerTree(box, dataset, chain.at(-1)!);
      for (const p of MULTILAYER_EXPECT.present) assert.ok(existsSync(join(top, p)), p);
      zfs(['unmount', `${dataset}/layers/${chain.at(-1)!}`]);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    ok(box.hutch(['images'])); // the next command's sweep destroys what was held
    const left = datasetsUnder(dataset).filter((n) => !liveDatasetsUnder(dataset).includes(n));
    assert.deepEqual(left, [], 'nothing retired is left once nothing holds it');
    assert.deepEqual(box.problems(), []);
  });

  it('refuses to open the store with another driver or another dataset, and says the way out', () => {
    const r = box.hutch(['--storage-driver', 'vfs', 'images']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /uses the zfs storage driver, not vfs/);
    const other = box.hutch(['images'], {
      env: { ...box.env, HUTCH_ZFS_DATASET: `${dataset}-elsewhere` },
    });
    assert.equal(other.status, 125);
    assert.match(other.stderr, /keeps its layers in the dataset .*, not .*-elsewhere/);
  });

  it('system reset destroys the datasets it made and keeps the parent', () => {
    ok(box.hutch(['system', 'reset', '-f']));
    assert.deepEqual(liveDatasetsUnder(dataset), ['']);
  });
});

describe('zfs driver where it cannot work', { skip: NEEDS_ZFS }, () => {
  const boxes: Sandbox[] = [];
  after(() => boxes.forEach((b) => b.cleanup()));

  it('--storage-driver zfs without zfs_dataset says how to make one, and what zfs-fuse lacks', () => {
    const box = sandbox();
    boxes.push(box);
    const r = box.hutch(['--storage-driver', 'zfs', 'images']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /zfs storage driver cannot work here: no parent dataset is configured/);
    assert.match(r.stderr, /zfs_dataset = /);
    assert.match(r.stderr, /zfs create -o compression=lz4 -o xattr=sa -o acltype=posixacl/);
    assert.match(r.stderr, /zfs-fuse/);
  });

  it('a zfs_dataset that does not exist is refused with the command that makes it', () => {
    const box = sandbox({ HUTCH_ZFS_DATASET: `${process.env.HUTCH_TEST_ZFS}/missing-${process.pid}` });
    boxes.push(box);
    const r = box.hutch(['images']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /the dataset \S+missing-\d+ does not exist/);
    assert.match(r.stderr, /zfs create/);
    assert.ok(
      !existsSync(join(box.root, 'store.json')) ||
        !readFileSync(join(box.root, 'store.json'), 'utf8').includes('zfs'),
    );
  });
});
