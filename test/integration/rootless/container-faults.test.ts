/**
 * Containers under stress, as the unprivileged user: 20 `run --rm` at once
 * all succeed and leave nothing; SIGKILL of `run --rm`, `run -d`, `stop` and
 * `rm -f` at random moments never leaves what `system check` calls a
 * problem, and never a leak: once the check has run, every mounted root,
 * runtime state and conmon of the store belongs to a running container.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkConsistency, killAtRandom } from '../../support/fault.ts';
import { HUTCH, runHutchAsync, sandbox } from '../../support/hutch.ts';
import type { Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const rootless = process.getuid!() !== 0;
const SKIP = rootless ? NEEDS_REGISTRY : 'runs as the unprivileged test user only';
const ROUNDS = 5;

const boxes: Sandbox[] = [];
after(() => {
  for (const b of boxes) {
    removeAll(b);
    b.cleanup();
  }
});

function spawnHutch(box: Sandbox, args: string[]): Promise<{ code: number; stderr: string }> {
  return runHutchAsync(args, box.env).then((r) => ({ code: r.status, stderr: r.stderr }));
}

function ok(box: Sandbox, args: string[]): string {
  const r = box.hutch(args);
  assert.equal(r.status, 0, `hutch ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** Full IDs of the containers `ps` lists (all of them with -a). */
function containerIds(box: Sandbox, all: boolean): string[] {
  return lines(ok(box, ['ps', '-q', '--no-trunc', ...(all ? ['-a'] : [])]));
}

function removeAll(box: Sandbox): void {
  const ids = box.hutch(['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean);
  if (ids.length > 0) box.hutch(['rm', '-f', ...ids]);
}

/** What the store holds outside its records, by container ID. */
interface Held {
  mounts: string[];
  runtime: string[];
  conmons: string[];
  networks: string[];
}

function held(box: Sandbox): Held {
  // The mounts live in the store's namespace: read its mount table from inside.
  const storage = `${realpathSync(box.root)}/storage/`;
  const mounts = lines(ok(box, ['unshare', 'cat', '/proc/self/mountinfo']))
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(storage))
    .map((p) => /\/containers\/([0-9a-f]{64})\//.exec(p)?.[1])
    .filter((id): id is string => id !== undefined);
  const oci = join(box.runroot, 'oci');
  const runtime: string[] = [];
  for (const rt of safeList(oci))
    runtime.push(...safeList(join(oci, rt)).filter((n) => /^[0-9a-f]{64}$/.test(n)));
  const conmons: string[] = [];
  for (const pid of safeList('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'conmon') continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!argv.includes(`--root=${oci}/crun`) && !argv.includes(`--root=${oci}/runc`)) continue;
      const c = argv.indexOf('-c');
      if (c >= 0 && argv[c + 1]) conmons.push(argv[c + 1]!);
    } catch {
      // Ended meanwhile.
    }
  }
  // User-mode networks: namespace files and pasta or slirp4netns processes working on them.
  const netnsDir = join(box.runroot, 'netns');
  const networks = safeList(netnsDir)
    .map((n) => /^([0-9a-f]{64})$/.exec(n)?.[1])
    .filter((id): id is string => id !== undefined);
  for (const pid of safeList('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) continue;
      const m = new RegExp(`${netnsDir}/([0-9a-f]{64})`).exec(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
      if (m) networks.push(m[1]!);
    } catch {
      // Ended meanwhile.
    }
  }
  return { mounts: [...new Set(mounts)], runtime, conmons, networks: [...new Set(networks)] };
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Held things whose container is not running: leaks, once nothing is in flight. */
function leaks(box: Sandbox): string[] {
  const h = held(box);
  const running = new Set(containerIds(box, false));
  return [
    ...h.mounts.filter((id) => !running.has(id)).map((id) => `mounted root of ${id.slice(0, 12)}`),
    ...h.runtime.filter((id) => !running.has(id)).map((id) => `runtime state of ${id.slice(0, 12)}`),
    ...h.conmons.filter((id) => !running.has(id)).map((id) => `conmon of ${id.slice(0, 12)}`),
    ...h.networks.filter((id) => !running.has(id)).map((id) => `network of ${id.slice(0, 12)}`),
  ];
}

/**
 * `system check` finds no problem, and after it nothing leaks. A killed
 * command's container may still be ending (conmon runs the exit command, or
 * just got its container killed by the check's reconciliation), so leaks are
 * given a few seconds to go.
 */
async function assertConsistent(box: Sandbox, what: string): Promise<void> {
  await checkConsistency([HUTCH, 'system', 'check', '--format', 'json'], {
    env: box.env as Record<string, string>,
  });
  const deadline = Date.now() + 10_000;
  let left = leaks(box);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    left = leaks(box);
  }
  assert.deepEqual(left, [], `${what}: leaked after system check`);
}

function timed(box: Sandbox, args: string[]): number {
  const t = Date.now();
  ok(box, args);
  return Date.now() - t;
}

describe('containers under stress', { skip: SKIP }, () => {
  const image = `${REGISTRY}/busybox:latest`;

  it('20 concurrent `run --rm` all succeed and leave no container', async () => {
    const box = sandbox();
    boxes.push(box);
    ok(box, ['pull', '-q', image]);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => spawnHutch(box, ['run', '--rm', image, 'true'])),
    );
    results.forEach((r, i) => assert.equal(r.code, 0, `run ${i}: ${r.stderr}`));
    assert.deepEqual(containerIds(box, true), []);
    await assertConsistent(box, 'after 20 run --rm');
    assert.deepEqual(held(box), { mounts: [], runtime: [], conmons: [], networks: [] });
  });

  it('SIGKILL of create --userns keep-id while it copies the image leaves no problem, no mount, and the next create works', async (t) => {
    const box = sandbox();
    boxes.push(box);
    const env = box.env as Record<string, string>;
    // Each round starts without the shifted copy: removing the image removes it.
    const fresh = (): void => {
      removeAll(box);
      box.hutch(['rmi', image]);
      ok(box, ['pull', '-q', image]);
    };
    fresh();
    const create = ['create', '--userns', 'keep-id', image, 'true'];
    const fullMs = timed(box, create);
    fresh();
    const views = (): string[] => {
      const dir = join(box.root, 'storage', 'overlay', 'views');
      try {
        return readdirSync(dir);
      } catch {
        return [];
      }
    };
    const { runs } = await killAtRandom({
      command: [HUTCH, ...create],
      env,
      runs: ROUNDS,
      minDelayMs: 5,
      maxDelayMs: Math.max(60, fullMs),
      seed: 21,
      afterEach: async (r, i) => {
        assert.ok(r.killed || r.exitCode === 0, `run ${i} ended with ${r.exitCode}: ${r.stderr}`);
        await checkConsistency([HUTCH, 'system', 'check', '--repair', '--format', 'json'], { env });
        assert.deepEqual(views(), [], `run ${i}: an image view is left after the repair`);
        await assertConsistent(box, `create --userns keep-id, run ${i}`);
        const r2 = box.hutch(['run', '--rm', '--userns', 'keep-id', image, 'stat', '-c', '%u', '/bin']);
        assert.equal(r2.stdout.trim(), '0', `run ${i}: ${r2.stderr}`);
        fresh();
      },
    });
    t.diagnostic(`creates killed mid-way: ${runs.filter((r) => r.killed).length} of ${ROUNDS}`);
  });

  it('SIGKILL of run --rm, run -d, stop and rm -f at random moments leaves no problem and no leak', async (t) => {
    const box = sandbox();
    boxes.push(box);
    ok(box, ['pull', '-q', image]);
    const env = box.env as Record<string, string>;
    const killed: Record<string, number> = {};
    const rounds = async (
      what: string,
      command: string[],
      fullMs: number,
      seed: number,
      before?: () => void,
    ): Promise<void> => {
      before?.();
      const { runs } = await killAtRandom({
        command: [HUTCH, ...command],
        env,
        runs: ROUNDS,
        minDelayMs: 10,
        maxDelayMs: Math.max(100, fullMs),
        seed,
        afterEach: async (r, i) => {
          assert.ok(r.killed || r.exitCode === 0, `${what} run ${i} ended with ${r.exitCode}: ${r.stderr}`);
          await assertConsistent(box, `${what}, run ${i} (killed after ${r.delayMs} ms: ${r.killed})`);
          before?.();
        },
      });
      killed[what] = runs.filter((r) => r.killed).length;
    };

    // Foreground, the container's stdio handed through: the kill lands in create, start, the wait or cleanup.
    const fg = ['run', '--rm', image, 'sh', '-c', 'echo hi; sleep 0.3'];
    await rounds('run --rm', fg, timed(box, fg), 11);

    // With a published port: the kill may land while pasta is being set up.
    const bg = ['run', '-d', '-p', '127.0.0.1::80', image, 'sleep', '1000'];
    await rounds('run -d', bg, timed(box, bg), 12);

    // On a user network: the kill may land while the shared namespace, the lease or the veth is made.
    ok(box, ['network', 'create', 'faults']);
    const onNet = ['run', '-d', '--network', 'faults', image, 'sleep', '1000'];
    await rounds('run -d on a user network', onNet, timed(box, onNet), 15);

    // A fresh running victim before each stop or rm -f. busybox's sleep as PID 1
    // ignores SIGTERM, so stop -t 1 waits its second, then kills: a long window.
    const victim = (): void => {
      box.hutch(['rm', '-f', 'victim']);
      ok(box, ['run', '-d', '--name', 'victim', image, 'sleep', '1000']);
    };
    victim();
    const stopMs = timed(box, ['stop', '-t', '1', 'victim']);
    await rounds('stop', ['stop', '-t', '1', 'victim'], stopMs, 13, victim);

    victim();
    const rmMs = timed(box, ['rm', '-f', 'victim']);
    await rounds('rm -f', ['rm', '-f', 'victim'], rmMs, 14, victim);

    t.diagnostic(`runs killed mid-way, of ${ROUNDS} each: ${JSON.stringify(killed)}`);
    const total = Object.values(killed).reduce((a, b) => a + b, 0);
    assert.ok(total >= ROUNDS, `most runs should be killed mid-way: ${JSON.stringify(killed)}`);

    removeAll(box);
    assert.deepEqual(containerIds(box, true), []);
    await assertConsistent(box, 'after rm -f of everything');
    const deadline = Date.now() + 10_000;
    let h = held(box);
    while (h.conmons.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      h = held(box);
    }
    assert.deepEqual(h, { mounts: [], runtime: [], conmons: [], networks: [] });
    // With no container on a user network, its namespace, pasta and name server are gone too.
    await checkConsistency([HUTCH, 'system', 'check', '--repair', '--format', 'json'], { env });
    assert.deepEqual(
      safeList(join(box.runroot, 'netns')).filter((n) => n.startsWith('infra') && !n.endsWith('.lock')),
      [],
    );
  });
});
