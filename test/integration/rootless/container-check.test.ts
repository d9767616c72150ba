/**
 * `system check` on containers, one inconsistency at a time, each made by
 * hand in a sandbox store: what the check reports (problem or garbage), that
 * what any command would do anyway (an exited container still marked
 * running) is simply done, and that --repair leaves nothing to report.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isLiveProcess, sandbox } from '../../support/hutch.ts';
import type { Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const rootless = process.getuid!() !== 0;
const SKIP = rootless ? NEEDS_REGISTRY : 'runs as the unprivileged test user only';

interface Finding {
  severity: 'problem' | 'garbage';
  what: string;
  detail: string;
  repaired: boolean;
}

/** A pid no process can have (above the kernel's largest pid_max). */
const DEAD_PID = 99_999_999;

describe('system check: containers', { skip: SKIP }, () => {
  const image = `${REGISTRY}/busybox:latest`;
  let box: Sandbox;
  let driverHome: string;
  before(() => {
    box = sandbox();
    ok(['pull', '-q', image]);
    const meta = JSON.parse(readFileSync(join(box.root, 'store.json'), 'utf8')) as { driver: string };
    driverHome = join(box.root, 'storage', meta.driver);
  });
  after(() => box.cleanup());

  function ok(args: string[]): string {
    const r = box.hutch(args);
    assert.equal(r.status, 0, `hutch ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  function check(repair = false): Finding[] {
    const r = box.hutch(['system', 'check', '--format', 'json', ...(repair ? ['--repair'] : [])]);
    assert.ok(r.stdout.startsWith('{'), `system check: ${r.stdout}${r.stderr}`);
    const { findings } = JSON.parse(r.stdout) as { findings: Finding[] };
    const problems = findings.filter((f) => f.severity === 'problem' && !f.repaired).length;
    assert.equal(r.status, problems === 0 ? 0 : 1, 'exit status 1 exactly when problems are left');
    return findings;
  }

  /** Repairs, checks that each finding says so, and that nothing is left. */
  function repairAll(): Finding[] {
    const repaired = check(true);
    for (const f of repaired) assert.ok(f.repaired, `not repaired: ${f.what}: ${f.detail}`);
    assert.deepEqual(check(), [], 'nothing left after --repair');
    return repaired;
  }

  function has(findings: Finding[], severity: Finding['severity'], what: RegExp, detail: RegExp): void {
    assert.ok(
      findings.some((f) => f.severity === severity && what.test(f.what) && detail.test(f.detail)),
      `expected a ${severity} ${what} ${detail} among:\n${findings.map((f) => `  ${f.severity}: ${f.what}: ${f.detail}`).join('\n')}`,
    );
  }

  const recordPath = (id: string): string => join(box.root, 'containers', id, 'container.json');
  function editRecord(
    id: string,
    fn: (r: { runtime: string; state: Record<string, unknown> }) => void,
  ): void {
    const r = JSON.parse(readFileSync(recordPath(id), 'utf8'));
    fn(r);
    writeFileSync(recordPath(id), JSON.stringify(r));
  }
  const status = (ref: string): string => ok(['inspect', '--format', '{{.State.Status}}', ref]).trim();

  /** Mounts a tmpfs where a container's root would be mounted, inside the store's namespace. */
  function mountRoot(id: string): string {
    const merged = join(driverHome, 'containers', id, 'merged');
    ok(['unshare', 'sh', '-c', `mkdir -p '${merged}' && mount -t tmpfs tmpfs '${merged}'`]);
    assert.ok(mounted(id));
    return merged;
  }
  function mounted(id: string): boolean {
    return ok(['unshare', 'cat', '/proc/self/mountinfo']).includes(`/containers/${id}/`);
  }
  const runtimeDir = (runtime: string, id: string): string => join(box.runroot, 'oci', runtime, id);
  const fakeId = (c: string): string => c.repeat(64);

  it('finds a consistent store consistent, with a running and a stopped container', () => {
    ok(['run', '-d', '--name', 'up', image, 'sleep', '1000']);
    ok(['create', '--name', 'down', image, 'true']);
    assert.deepEqual(check(), []);
    ok(['rm', '-f', 'up', 'down']);
    assert.deepEqual(check(), []);
  });

  it('reports leftovers nothing refers to as garbage, and --repair removes them', () => {
    const ghost = fakeId('a');
    const names = join(box.root, 'containers', 'names');
    symlinkSync(ghost, join(names, 'stray'));
    mkdirSync(join(box.root, 'containers', `.tmp-${ghost}`));
    mkdirSync(join(driverHome, 'containers', ghost, 'diff'), { recursive: true });
    mkdirSync(runtimeDir('crun', ghost), { recursive: true });
    writeFileSync(join(box.runroot, 'exits', ghost), '0');
    const found = check();
    has(found, 'garbage', /container name "stray"/, /does not exist/);
    has(found, 'garbage', /temporary file/, /\.tmp-a{64}$/);
    has(found, 'garbage', /container root/, /belongs to no container/);
    has(found, 'garbage', /runtime state/, /belongs to no container/);
    has(found, 'garbage', /exit file/, /belongs to no container/);
    assert.equal(found.filter((f) => f.severity === 'problem').length, 0);
    repairAll();
    assert.equal(existsSync(join(names, 'stray')), false);
    assert.equal(existsSync(join(driverHome, 'containers', ghost)), false);
    assert.equal(existsSync(runtimeDir('crun', ghost)), false);
  });

  it('marks exited a container whose conmon died, and releases its root, without --repair', () => {
    const id = ok(['create', '--name', 'stale', image, 'sleep', '1000']).trim();
    mountRoot(id);
    mkdirSync(runtimeDir('crun', id), { recursive: true });
    editRecord(id, (r) => {
      Object.assign(r.state, { status: 'running', conmonPid: DEAD_PID, conmonStart: 1, pid: DEAD_PID });
    });
    // What any command would do (ps shows it exited): the check does it too, and has nothing to report.
    assert.deepEqual(check(), []);
    assert.equal(status('stale'), 'exited');
    assert.equal(mounted(id), false);
    assert.equal(existsSync(runtimeDir('crun', id)), false);
    ok(['rm', 'stale']);
  });

  it('releases the root a killed start left mounted, without --repair', () => {
    const id = ok(['create', '--name', 'halfstarted', image, 'true']).trim();
    mountRoot(id);
    assert.deepEqual(check(), []);
    assert.equal(mounted(id), false);
    assert.equal(status('halfstarted'), 'created');
    ok(['rm', 'halfstarted']);
  });

  it('reports what it cannot release (a runtime that is gone): a false "running", a mounted root, runtime state', () => {
    const id = ok(['create', '--name', 'noruntime', image, 'true']).trim();
    const id2 = ok(['create', '--name', 'noruntime2', image, 'true']).trim();
    editRecord(id, (r) => {
      r.runtime = 'no-such-runtime';
      Object.assign(r.state, { status: 'running', conmonPid: DEAD_PID, conmonStart: 1 });
    });
    editRecord(id2, (r) => {
      r.runtime = 'no-such-runtime';
    });
    mountRoot(id2);
    mkdirSync(runtimeDir('no-such-runtime', id2), { recursive: true });
    const found = check();
    has(found, 'problem', /container noruntime \(/, /the record says running, but its monitor .* is gone/);
    has(found, 'problem', /container noruntime2 /, /its root is mounted .* but it is not running/);
    has(found, 'garbage', /runtime state of container noruntime2 /, /not running/);
    repairAll();
    assert.equal(status('noruntime'), 'exited');
    assert.equal(mounted(id2), false);
    assert.equal(existsSync(runtimeDir('no-such-runtime', id2)), false);
    for (const i of [id, id2]) editRecord(i, (r) => (r.runtime = 'crun'));
    ok(['rm', 'noruntime', 'noruntime2']);
  });

  it('reports a mounted root with no container as a leak; --repair unmounts it and removes its directory', () => {
    const ghost = fakeId('b');
    mountRoot(ghost);
    has(check(), 'problem', /container root b{12}/, /no such container \(a leaked mount\)/);
    repairAll();
    assert.equal(mounted(ghost), false);
    assert.equal(existsSync(join(driverHome, 'containers', ghost)), false);
  });

  it('reports a conmon whose container has no record; --repair kills the container', () => {
    const id = ok(['run', '-d', '--name', 'orphan', image, 'sleep', '1000']).trim();
    const conmon = Number(readFileSync(join(box.root, 'containers', id, 'conmon.pid'), 'utf8'));
    rmSync(join(box.root, 'containers', id), { recursive: true });
    rmSync(join(box.root, 'containers', 'names', 'orphan'));
    const found = check();
    has(found, 'problem', new RegExp(`conmon ${conmon}`), /monitors container .* which has no record/);
    has(found, 'problem', /container root/, /a leaked mount/);
    has(found, 'garbage', /runtime state/, /belongs to no container/);
    repairAll();
    assert.equal(isLiveProcess(conmon), false, 'conmon has exited');
    assert.equal(mounted(id), false);
    assert.equal(existsSync(runtimeDir('crun', id)), false);
  });

  it('reports a damaged record; --repair removes that container', () => {
    const id = ok(['create', '--name', 'damaged', image, 'true']).trim();
    writeFileSync(recordPath(id), '{"id": ');
    has(check(), 'problem', /container /, /not valid JSON; --repair removes it/);
    repairAll();
    assert.equal(existsSync(join(box.root, 'containers', id)), false);
    assert.equal(existsSync(join(box.root, 'containers', 'names', 'damaged')), false);
  });

  it('reports a name left by an interrupted rename, and a name not reserved; --repair fixes both', () => {
    const id = ok(['create', '--name', 'named', image, 'true']).trim();
    const names = join(box.root, 'containers', 'names');
    symlinkSync(id, join(names, 'newname'));
    rmSync(join(names, 'named'));
    const found = check();
    has(found, 'garbage', /container name "newname"/, /which is named named \(a rename was interrupted\)/);
    has(found, 'problem', /container named /, /its name "named" is not reserved/);
    repairAll();
    assert.deepEqual(readdirSync(names), ['named']);
    assert.equal(ok(['inspect', '--format', '{{.Id}}', 'named']).trim(), id);
    ok(['rm', 'named']);
  });

  it('leaves nothing behind', () => {
    assert.deepEqual(check(), []);
    assert.equal(ok(['ps', '-aq']), '');
    const ours = readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`--root=${box.runroot}/oci/`);
        } catch {
          return false;
        }
      });
    assert.deepEqual(ours, [], 'no conmon of this store is left');
  });
});
