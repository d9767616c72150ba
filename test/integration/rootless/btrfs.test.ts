/**
 * The btrfs driver as the unprivileged user, on a real btrfs (a loop device
 * the test setup mounts with user_subvol_rm_allowed): chosen by itself
 * there; layers and container roots are subvolumes, snapshots keep the
 * image apart from what containers write; diff, commit and export work;
 * rm and rmi delete the subvolumes; a killed pull's half-made subvolume
 * never shows and is swept; a store keeps its driver; and forcing btrfs
 * where it cannot work says why and what to do.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BTRFS_DIR,
  BTRFS_STRICT_DIR,
  NEEDS_BTRFS,
  NEEDS_STRICT_BTRFS,
  isSubvolume,
} from '../../support/btrfs.ts';
import { assertDiffHas, exportedEntries } from '../../support/driver-checks.ts';
import { checkConsistency, killAtRandom } from '../../support/fault.ts';
import { HUTCH, sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY, pushed } from '../../support/images.ts';
import { MULTILAYER_EXPECT } from '../../setup/images-multilayer.ts';

const image = (): string => `${REGISTRY}/multilayer:5`;
const LAYER_NAME = /^[a-f0-9]{64}$/;

function ok(r: Result): Result {
  assert.equal(r.status, 0, r.stderr);
  return r;
}

function layersDir(box: Sandbox): string {
  return join(box.root, 'storage', 'btrfs', 'layers');
}

/** The image's layer ids, bottom first, from the store's own record. */
function chainOf(box: Sandbox, name: string): string[] {
  const id = ok(box.hutch(['image', 'inspect', '--format', '{{.Id}}', name]))
    .stdout.trim()
    .replace(/^sha256:/, '');
  const db = JSON.parse(readFileSync(join(box.root, 'images', 'images.json'), 'utf8')) as {
    images: { id: string; layers: string[] }[];
  };
  return db.images.find((i) => i.id === id)!.layers;
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

/** The last entry of each of multilayer:5's layer tars (test/setup/images-multilayer.ts), and its content. */
function assertWholeLayer(dir: string, index: number): void {
  const MiB = 1 << 20;
  const last: [string, number][] = [
    ['bin/busybox', -1],
    ['opaque/sub/old2.txt', 'hidden by layer 5\n'.length],
    ['etc/hutch-release', 'multilayer 5\n'.length],
    ['data/c.bin', 2 * MiB],
    ['opaque/new.txt', 'only file left in opaque/\n'.length],
  ];
  for (const [path, size] of last.slice(0, index + 1)) {
    if (index >= 4 && path === 'opaque/sub/old2.txt') continue; // hidden by the opaque directory of layer 5
    const st = statSync(join(dir, path));
    if (size >= 0) assert.equal(st.size, size, `${path} is whole in layer ${index + 1}`);
  }
}

function storeDriver(box: Sandbox): string | undefined {
  return (JSON.parse(readFileSync(join(box.root, 'store.json'), 'utf8')) as { driver?: string }).driver;
}

describe('btrfs driver, rootless', { skip: NEEDS_REGISTRY || NEEDS_BTRFS }, () => {
  let box: Sandbox;
  before(() => {
    box = sandbox({}, { under: BTRFS_DIR });
  });
  after(() => box.cleanup());

  it('is chosen by itself where the user may create and delete subvolumes, and info and doctor say why', () => {
    const info = JSON.parse(ok(box.hutch(['info', '--format', 'json'])).stdout) as {
      Store: { GraphDriverName: string; DriverReason: string };
    };
    assert.equal(info.Store.GraphDriverName, 'btrfs');
    assert.match(info.Store.DriverReason, /may create and delete subvolumes/);
    const doctor = JSON.parse(box.hutch(['doctor', '--format', 'json']).stdout) as {
      checks: { id: string; status: string; reason: string }[];
    };
    const check = (id: string) => doctor.checks.find((c) => c.id === id);
    assert.equal(check('store.btrfs')?.status, 'PASS', check('store.btrfs')?.reason);
    assert.match(check('store.driver')?.reason ?? '', /^btrfs: /);
    ok(box.hutch(['pull', '-q', image()]));
    assert.equal(storeDriver(box), 'btrfs');
  });

  it('keeps each layer as a subvolume holding the tree up to it: whiteouts apply to the child only', () => {
    const chain = chainOf(box, image());
    assert.deepEqual(chain, multilayerChain());
    const onDisk = readdirSync(layersDir(box)).filter((n) => LAYER_NAME.test(n));
    assert.deepEqual(onDisk.sort(), [...chain].sort());
    for (const id of chain) assert.ok(isSubvolume(join(layersDir(box), id)), `layer ${id} is a subvolume`);
    const top = join(layersDir(box), chain.at(-1)!);
    for (const p of MULTILAYER_EXPECT.present) assert.ok(existsSync(join(top, p)), `${p} is in the image`);
    for (const p of MULTILAYER_EXPECT.absent)
      assert.ok(!existsSync(join(top, p)), `${p} is gone from the image`);
    for (const [p, text] of Object.entries(MULTILAYER_EXPECT.contents))
      assert.equal(readFileSync(join(top, p), 'utf8'), text);
    // Layer 4 deletes data/remove-me.txt and layer 5 hides opaque/'s old files, in their own snapshots only.
    const third = join(layersDir(box), chain[2]!);
    assert.ok(existsSync(join(third, 'data/remove-me.txt')));
    assert.ok(existsSync(join(third, 'opaque/sub/old2.txt')));
    assert.equal(readFileSync(join(third, 'data/keep.txt'), 'utf8'), 'v1\n');
  });

  it('runs a container on a writable snapshot whose writes never reach the image', () => {
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
        'echo changed > /data/keep.txt; echo new > /added; rm /data/a.bin',
      ]),
    );
    const id = ok(box.hutch(['inspect', '--format', '{{.Id}}', 'writer'])).stdout.trim();
    const root = join(box.root, 'storage', 'btrfs', 'containers', id, 'rootfs');
    assert.ok(isSubvolume(root), 'the container root is a subvolume');
    assert.equal(readFileSync(join(root, 'data/keep.txt'), 'utf8'), 'changed\n');
    const top = join(layersDir(box), chainOf(box, image()).at(-1)!);
    assert.equal(readFileSync(join(top, 'data/keep.txt'), 'utf8'), 'v2\n');
    assert.ok(existsSync(join(top, 'data/a.bin')));
    assert.ok(!existsSync(join(top, 'added')));
    const fresh = ok(box.hutch(['run', '--rm', '--network', 'none', image(), 'cat', '/data/keep.txt']));
    assert.equal(fresh.stdout, 'v2\n', 'another container starts from the image, not from the first one');
  });

  it("diff, commit and export see the container's changes", () => {
    assertDiffHas(box, 'writer', ['C /data', 'C /data/keep.txt', 'D /data/a.bin', 'A /added']);
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
        'cat /added /data/keep.txt; ls /data',
      ]),
    );
    assert.equal(r.stdout, 'new\nchanged\nb.bin\nc.bin\nd.bin\nkeep.txt\n');
    const names = exportedEntries(box, 'writer');
    assert.ok(names.some((n) => n.replace(/^\.?\//, '') === 'added'));
    assert.ok(!names.some((n) => n.replace(/^\.?\//, '') === 'data/a.bin'));
  });

  it('rm and rmi delete the subvolumes, read-only ones too; system check then finds nothing at all', () => {
    const id = ok(box.hutch(['inspect', '--format', '{{.Id}}', 'writer'])).stdout.trim();
    ok(box.hutch(['rm', 'writer']));
    assert.ok(!existsSync(join(box.root, 'storage', 'btrfs', 'containers', id)));
    // A user may not delete a read-only subvolume: the driver makes it writable first.
    const bottom = join(layersDir(box), chainOf(box, image())[0]!);
    ok(box.hutch(['unshare', 'btrfs', 'property', 'set', '-ts', bottom, 'ro', 'true']));
    ok(box.hutch(['rmi', 'committed:1', image()]));
    assert.deepEqual(readdirSync(layersDir(box)), []);
    const check = JSON.parse(ok(box.hutch(['system', 'check', '--format', 'json'])).stdout) as {
      findings: unknown[];
    };
    assert.deepEqual(check.findings, []);
  });

  it("a dead pull's half-made layer is swept at the next open; a live one's is garbage for system check", () => {
    const ended = spawnSync('true');
    const dead = `.tmp-${'a'.repeat(64)}-${ended.pid}-dead`;
    const live = `.tmp-${'b'.repeat(64)}-${process.pid}-live`;
    for (const name of [dead, live])
      ok(box.hutch(['unshare', 'btrfs', 'subvolume', 'create', join(layersDir(box), name)]));
    ok(box.hutch(['images']));
    assert.ok(!existsSync(join(layersDir(box), dead)), 'swept: its process is gone');
    assert.ok(isSubvolume(join(layersDir(box), live)), 'kept: its process lives');
    const check = JSON.parse(ok(box.hutch(['system', 'check', '--repair', '--format', 'json'])).stdout) as {
      findings: { what: string; detail: string }[];
    };
    assert.ok(check.findings.some((f) => f.what === 'half-made layer' && f.detail.endsWith(live)));
    assert.deepEqual(readdirSync(layersDir(box)), []);
  });

  it('SIGKILL at random moments of a pull never leaves a half-made layer in sight, and the next pull completes', async () => {
    const env = box.env as Record<string, string>;
    const started = Date.now();
    ok(box.hutch(['pull', '-q', image()]));
    const full = Date.now() - started;
    ok(box.hutch(['rmi', '-f', image()]));
    let halfMade = 0;
    const { runs } = await killAtRandom({
      command: [HUTCH, 'pull', '-q', image()],
      env,
      runs: 10,
      minDelayMs: 20,
      maxDelayMs: Math.max(100, full),
      seed: 11,
      afterEach: async (r, i) => {
        assert.ok(r.killed || r.exitCode === 0, `run ${i} ended with ${r.exitCode}: ${r.stderr}`);
        // Before any other command: the first to open the store sweeps what the kill left.
        if (readdirSync(layersDir(box)).some((n) => n.startsWith('.tmp-'))) halfMade++;
        await checkConsistency([HUTCH, 'system', 'check', '--format', 'json'], { env });
        // Whatever shows under a layer's own name is whole, down to the last file its tar holds.
        const chain = multilayerChain();
        for (const n of readdirSync(layersDir(box)).filter((x) => LAYER_NAME.test(x))) {
          assert.ok(chain.includes(n), `${n} is a layer of the image`);
          assertWholeLayer(join(layersDir(box), n), chain.indexOf(n));
        }
        // system check opened the store: the killed pull's temporary subvolume is gone.
        assert.deepEqual(
          readdirSync(layersDir(box)).filter((n) => n.startsWith('.tmp-')),
          [],
          'no temporary subvolume left after the next open',
        );
        box.hutch(['rmi', '-f', image()]); // start over: the next kill lands in an empty store's pull
      },
    });
    const killed = runs.filter((r) => r.killed).length;
    assert.ok(
      halfMade >= 1,
      `some of the ${killed} kills landed while a layer was being made (pull: ${full} ms)`,
    );
    ok(box.hutch(['pull', '-q', image()]));
    const top = join(layersDir(box), chainOf(box, image()).at(-1)!);
    for (const p of MULTILAYER_EXPECT.present) assert.ok(existsSync(join(top, p)), p);
    ok(box.hutch(['system', 'check', '--repair']));
    const check = JSON.parse(ok(box.hutch(['system', 'check', '--format', 'json'])).stdout) as {
      findings: unknown[];
    };
    assert.deepEqual(check.findings, []);
  });

  it('refuses to open the store with another driver, and says the way out', () => {
    const r = box.hutch(['--storage-driver', 'vfs', 'images']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /uses the btrfs storage driver, not vfs/);
    assert.match(r.stderr, /system reset/);
  });
});

describe('btrfs driver where it cannot work', { skip: NEEDS_BTRFS }, () => {
  const boxes: Sandbox[] = [];
  after(() => boxes.forEach((b) => b.cleanup()));

  it('--storage-driver btrfs off btrfs says the store is not on btrfs', (t) => {
    if (statfsSync(tmpdir()).type === 0x9123683e) return t.skip(`${tmpdir()} is on btrfs itself`);
    const box = sandbox();
    boxes.push(box);
    const r = box.hutch(['--storage-driver', 'btrfs', 'images']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /btrfs storage driver cannot work here: .* is on \S+, not btrfs/);
    assert.match(r.stderr, /HUTCH_ROOT/);
  });

  it(
    '--storage-driver btrfs without user_subvol_rm_allowed names the mount option',
    { skip: NEEDS_STRICT_BTRFS },
    () => {
      const box = sandbox({}, { under: BTRFS_STRICT_DIR });
      boxes.push(box);
      const r = box.hutch(['--storage-driver', 'btrfs', 'images']);
      assert.equal(r.status, 125);
      assert.match(r.stderr, /mounted without user_subvol_rm_allowed/);
      assert.match(r.stderr, /mount -o remount,user_subvol_rm_allowed \/mnt\/\S+/);
      assert.deepEqual(
        readdirSync(box.root).filter((n) => n.includes('btrfs-probe')),
        [],
        'the test subvolume is gone',
      );
    },
  );

  it(
    'the automatic choice there is another driver, and info says why not btrfs',
    { skip: NEEDS_STRICT_BTRFS },
    () => {
      const box = sandbox({}, { under: BTRFS_STRICT_DIR });
      boxes.push(box);
      const info = JSON.parse(ok(box.hutch(['info', '--format', 'json'])).stdout) as {
        Store: { GraphDriverName: string; DriverReason: string };
      };
      assert.notEqual(info.Store.GraphDriverName, 'btrfs');
      assert.match(info.Store.DriverReason, /btrfs is not used: .*user_subvol_rm_allowed/);
      ok(box.hutch(['images']));
      assert.notEqual(storeDriver(box), 'btrfs');
    },
  );
});
