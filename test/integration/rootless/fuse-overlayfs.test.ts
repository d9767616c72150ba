/**
 * The fuse-overlayfs driver as the unprivileged user, forced (this kernel
 * mounts overlay rootless, so the automatic choice would not take it):
 * layers kept as overlay keeps them; a container's root is a fuse-overlayfs
 * mount served by a process that goes with the mount — after rm, after a
 * --rm run, after a run killed at random moments; whiteouts, opaque
 * directories and hard links come through; diff, commit and export work;
 * a killed pull never shows a half-made layer; a daemon whose mount nobody
 * here can see is found and ended by system check; system reset leaves no
 * daemon; a store keeps its driver.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertDiffHas, exportedEntries } from '../../support/driver-checks.ts';
import { checkConsistency, killAtRandom } from '../../support/fault.ts';
import { HUTCH, sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';
import { MULTILAYER_EXPECT } from '../../setup/images-multilayer.ts';

const DRIVER = 'fuse-overlayfs';
const image = (): string => `${REGISTRY}/multilayer:5`;
const LAYER_NAME = /^[a-f0-9]{64}$/;
const NEEDS_FUSE =
  spawnSync('sh', ['-c', 'command -v fuse-overlayfs && test -r /dev/fuse -a -w /dev/fuse']).status === 0
    ? false
    : 'needs fuse-overlayfs and a usable /dev/fuse (npm test as root installs it and sets /dev/fuse 0666)';

function ok(r: Result): Result {
  assert.equal(r.status, 0, r.stderr);
  return r;
}

/** The fuse-overlayfs processes serving mounts of this sandbox's store (zombies have no command line). */
function daemons(box: Sandbox): { pid: number; mountPoint: string }[] {
  const out: { pid: number; mountPoint: string }[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'fuse-overlayfs') continue;
      const mountPoint = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).at(-1);
      if (mountPoint?.startsWith(`${box.root}/`)) out.push({ pid, mountPoint });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Daemons may take a moment to exit after their mount went. */
async function noDaemons(box: Sandbox, why: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (daemons(box).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(daemons(box), [], why);
}

function findings(box: Sandbox, repair = false): { severity: string; what: string; detail: string }[] {
  // Exits non-zero when it finds a problem: the JSON says which.
  const r = box.hutch(['system', 'check', ...(repair ? ['--repair'] : []), '--format', 'json']);
  assert.ok(r.stdout.trim().startsWith('{'), r.stderr);
  return (JSON.parse(r.stdout) as { findings: { severity: string; what: string; detail: string }[] })
    .findings;
}

describe('fuse-overlayfs driver, rootless', { skip: NEEDS_REGISTRY || NEEDS_FUSE }, () => {
  let box: Sandbox;
  const h = (args: string[]): Result => box.hutch(args);
  const layers = (): string => join(box.root, 'storage', DRIVER, 'layers');
  before(() => {
    box = sandbox({ HUTCH_STORAGE_DRIVER: DRIVER });
  });
  after(() => box.cleanup());

  it('pulls into layers kept as overlay keeps them: whiteouts as 0:0 devices, opaque directories marked', () => {
    ok(h(['pull', '-q', image()]));
    const store = JSON.parse(readFileSync(join(box.root, 'store.json'), 'utf8')) as { driver?: string };
    assert.equal(store.driver, DRIVER);
    const info = JSON.parse(ok(h(['info', '--format', 'json'])).stdout) as {
      Store: { GraphDriverName: string; DriverReason: string };
    };
    assert.equal(info.Store.GraphDriverName, DRIVER);
    const ids = readdirSync(layers()).filter((n) => LAYER_NAME.test(n));
    assert.equal(ids.length, 5);
    for (const id of ids) {
      assert.ok(statSync(join(layers(), id, 'diff')).isDirectory());
      assert.ok(
        existsSync(join(box.root, 'storage', DRIVER, 'l', readFileSync(join(layers(), id, 'link'), 'utf8'))),
      );
    }
    // Somewhere a layer deletes data/remove-me.txt: a 0:0 character device in that layer's diff.
    const whiteout = ids
      .map((id) => join(layers(), id, 'diff', 'data', 'remove-me.txt'))
      .find((p) => existsSync(p) && statSync(p).isCharacterDevice());
    assert.ok(whiteout, 'a whiteout for data/remove-me.txt');
    assert.deepEqual(daemons(box), [], 'a pull mounts nothing');
  });

  it('runs containers on a fuse-overlayfs mount: the image as its layers say, writes kept apart', async () => {
    const r = ok(
      h([
        'run',
        '--rm',
        '--network',
        'none',
        image(),
        'sh',
        '-c',
        `for p in ${MULTILAYER_EXPECT.present.join(' ')}; do test -e /$p || echo missing $p; done;` +
          `for p in ${MULTILAYER_EXPECT.absent.join(' ')}; do test -e /$p && echo present $p; done;` +
          'grep -c fuse /proc/self/mounts >/dev/null || echo not-fuse; true',
      ]),
    );
    assert.equal(r.stdout, '');
    await noDaemons(box, 'the --rm run took its daemon with it');
    ok(
      h([
        'run',
        '--name',
        'writer',
        '--network',
        'none',
        image(),
        'sh',
        '-c',
        'echo changed > /data/keep.txt; echo new > /added; rm /data/a.bin; rm -rf /opaque; mkdir /opaque; echo y > /opaque/y;' +
          'echo linked > /l1; ln /l1 /l2',
      ]),
    );
    await noDaemons(box, 'a container that ended has no mount and no daemon');
    const fresh = ok(h(['run', '--rm', '--network', 'none', image(), 'cat', '/data/keep.txt']));
    assert.equal(fresh.stdout, 'v2\n', 'another container starts from the image');
  });

  it('diff, commit and export see the changes; hard links stay one file', () => {
    const diff = assertDiffHas(box, 'writer', [
      'C /data',
      'C /data/keep.txt',
      'D /data/a.bin',
      'A /added',
      'C /opaque',
      'A /opaque/y',
    ]);
    assert.ok(!diff.some((l) => l.includes('.wh.')), 'no marker of fuse-overlayfs shows as a file');
    ok(h(['commit', 'writer', 'committed:1']));
    const r = ok(
      h([
        'run',
        '--rm',
        '--network',
        'none',
        'committed:1',
        'sh',
        '-c',
        'cat /added /data/keep.txt; ls /data /opaque; stat -c %i /l1 /l2 | uniq | wc -l',
      ]),
    );
    assert.equal(r.stdout, 'new\nchanged\n/data:\nb.bin\nc.bin\nd.bin\nkeep.txt\n\n/opaque:\ny\n1\n');
    const names = exportedEntries(box, 'writer', true);
    assert.ok(names.some((n) => / \.?\/?added$/.test(n)));
    assert.ok(!names.some((n) => /data\/a\.bin$/.test(n)));
    assert.ok(
      names.some((n) => /^h.* \.?\/?l2 link to \.?\/?l1$/.test(n)),
      'l2 is a hard link to l1',
    );
  });

  it('rm leaves no mount, no daemon and nothing for system check', async () => {
    ok(h(['run', '-d', '--name', 'sleeper', '--network', 'none', image(), 'sleep', '600']));
    assert.equal(daemons(box).length, 1, 'one daemon serves the running container');
    ok(h(['rm', '-f', 'sleeper']));
    ok(h(['rm', 'writer']));
    await noDaemons(box, 'rm ends the daemon');
    assert.deepEqual(readdirSync(join(box.root, 'storage', DRIVER, 'containers')), []);
    assert.deepEqual(findings(box), []);
  });

  it('a run killed at random moments leaves no daemon once its container is removed', async () => {
    const env = box.env as Record<string, string>;
    let n = 0;
    await killAtRandom({
      command: [HUTCH, 'run', '--name', 'killed', '--network', 'none', image(), 'sleep', '0.3'],
      env,
      runs: 6,
      minDelayMs: 30,
      maxDelayMs: 400,
      seed: 7,
      afterEach: async () => {
        n++;
        // The container may still run under conmon: rm -f stops it and takes its root.
        box.hutch(['rm', '-f', 'killed']);
        await checkConsistency([HUTCH, 'system', 'check', '--format', 'json'], { env });
        await noDaemons(box, `after killed run ${n} and rm`);
      },
    });
  });

  it('system check ends a daemon serving a mount nobody here sees, and nothing else', async () => {
    ok(h(['run', '-d', '--name', 'keeper', '--network', 'none', image(), 'sleep', '600']));
    const id = ok(h(['inspect', '--format', '{{.Id}}', 'keeper'])).stdout.trim();
    // A mount in a mount namespace of its own, gone from hutch's sight: what a dead pause process leaves.
    const orphan = join(box.root, 'storage', DRIVER, 'containers', 'f'.repeat(64));
    const lower = join(
      layers(),
      readdirSync(layers()).find((n) => LAYER_NAME.test(n))!,
      'diff',
    );
    ok(
      h([
        'unshare',
        'sh',
        '-c',
        `mkdir -p ${orphan}/merged ${orphan}/diff ${orphan}/work && unshare -m fuse-overlayfs -o lowerdir=${lower},upperdir=${orphan}/diff,workdir=${orphan}/work ${orphan}/merged`,
      ]),
    );
    const leaked = daemons(box).filter((d) => d.mountPoint.startsWith(orphan));
    assert.equal(leaked.length, 1, 'the orphan daemon runs');
    const seen = findings(box).filter((f) => f.what.startsWith('fuse-overlayfs'));
    assert.equal(seen.length, 1, JSON.stringify(seen));
    assert.match(seen[0]!.detail, /not mounted in hutch's namespace/);
    assert.equal(daemons(box).length, 2, 'without --repair nothing is ended');
    findings(box, true);
    const left = daemons(box);
    assert.deepEqual(
      left.map((d) => d.mountPoint),
      [join(box.root, 'storage', DRIVER, 'containers', id, 'merged')],
      "the running container's daemon is left alone",
    );
    assert.deepEqual(findings(box), []);
    ok(h(['rm', '-f', 'keeper']));
    await noDaemons(box, 'rm -f ends the last one');
  });

  it('SIGKILL at random moments of a pull never leaves a half-made layer in sight', async () => {
    const env = box.env as Record<string, string>;
    ok(h(['rmi', '-f', 'committed:1', image()]));
    const started = Date.now();
    ok(h(['pull', '-q', image()]));
    const full = Date.now() - started;
    ok(h(['rmi', '-f', image()]));
    await killAtRandom({
      command: [HUTCH, 'pull', '-q', image()],
      env,
      runs: 6,
      minDelayMs: 20,
      maxDelayMs: Math.max(100, full),
      seed: 13,
      afterEach: async (r, i) => {
        assert.ok(r.killed || r.exitCode === 0, `run ${i} ended with ${r.exitCode}: ${r.stderr}`);
        await checkConsistency([HUTCH, 'system', 'check', '--repair', '--format', 'json'], { env });
        for (const n of readdirSync(layers())) assert.ok(LAYER_NAME.test(n), `${n} is a whole layer`);
        box.hutch(['rmi', '-f', image()]);
      },
    });
    ok(h(['pull', '-q', image()]));
    assert.deepEqual(findings(box), []);
  });

  it('system reset ends every daemon, and a store keeps its driver', async () => {
    const r = box.hutch(['--storage-driver', 'overlay', 'images']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /uses the fuse-overlayfs storage driver, not overlay/);
    const child = spawn(
      HUTCH,
      ['run', '--rm', '--name', 'foreground', '--network', 'none', image(), 'sleep', '600'],
      { env: box.env, stdio: 'ignore' },
    );
    // Running, not only mounted: a reset before the start would leave nothing to stop.
    const running = (): boolean =>
      box.hutch(['ps', '--filter', 'name=foreground', '--format', '{{.Status}}']).stdout.startsWith('Up');
    const deadline = Date.now() + 20_000;
    while (!running() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    assert.equal(daemons(box).length, 1);
    ok(h(['system', 'reset', '-f']));
    await new Promise((res) => child.once('exit', res));
    await noDaemons(box, 'reset stops the container and its daemon');
  });
});
