/**
 * The cgroup delegation of hutch setup without systemd, on this kernel's own
 * cgroup2 hierarchy: the boot script's `login` mode (what the PAM hook runs)
 * makes the user's subtree, gives it to the user and moves the process that
 * opens the session into its `login` leaf; the user can then move that
 * process's children into a cgroup of their own there, as crun does for a
 * container, but not a process of theirs that started outside. Limits
 * cannot be checked here (this machine's controllers are on v1), but these
 * are the kernel's delegation rules the design rests on. The script is
 * pointed at a scratch subtree of the v2 mount, never the host's real one.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bootScript } from '../../../src/engine/setup/boot-script.ts';
import { parseMountInfo } from '../../../src/host/cgroups.ts';
import { lookupUser } from '../../../src/host/passwd.ts';
import { tempDir } from '../../support/temp.ts';

const user = lookupUser(process.env.HUTCH_TEST_USER ?? 'hutchtest');
const v2 = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.fsType === 'cgroup2');
const skip =
  process.getuid!() !== 0
    ? 'runs as root only'
    : !user
      ? 'needs the test user (hutchtest), which npm test makes'
      : !v2
        ? 'needs a cgroup2 hierarchy mounted'
        : !existsSync('/usr/bin/setpriv')
          ? 'needs setpriv (util-linux) to become the test user'
          : false;

const children: ChildProcess[] = [];
let base = '';

/** Removes a cgroup and its children, deepest first, once their processes are gone. */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir)) if (statSync(join(dir, e)).isDirectory()) removeCgroup(join(dir, e));
  rmdirSync(dir);
}

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(
    children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)),
  );
  if (base) removeCgroup(base);
});

function cgroupOf(pid: number): string {
  return /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1] ?? '';
}

async function until(what: string, pred: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `sh -c SCRIPT` as the test user; its exit status and error. */
function asUser(script: string): { status: number | null; stderr: string } {
  const r = spawnSync('runuser', ['-u', user!.name, '--', 'sh', '-c', script], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

describe('cgroup delegation without systemd, on this kernel', { skip }, () => {
  it("puts a login in the user's subtree, where the user may move its children, and only there", async () => {
    const u = user!;
    base = join(v2!.mountPoint, `hutch-test-${process.pid}`);
    const rel = `${base.slice(v2!.mountPoint.length)}/user-${u.uid}`;
    const sub = join(base, `user-${u.uid}`);
    const t = { user: { name: u.name, uid: u.uid, gid: u.gid, home: u.home }, hostRoot: '/', live: true };
    const text = bootScript(t, 'openrc', true, true)
      .replace(/^cg=\/sys\/fs\/cgroup$/m, `cg=${v2!.mountPoint}`)
      .replace(/^sub=.*$/m, `sub=${sub}`)
      // The runtime directory is the test host's own business here.
      .replace(/^run=.*$/m, `run=${tempDir()}`);
    const script = join(tempDir(), 'boot.sh');
    writeFileSync(script, text, { mode: 0o755 });

    // Another user's session is left alone.
    const r = spawnSync('sh', [script, 'login'], {
      env: { PAM_TYPE: 'open_session', PAM_USER: 'nobody-else' },
    });
    assert.equal(r.status, 0);
    assert.equal(existsSync(sub), false);

    // The "session": a shell that runs the hook as pam_exec would (its parent), then becomes the user's process.
    const session = spawn(
      'sh',
      ['-c', `sh ${script} login && exec setpriv --reuid=${u.uid} --regid=${u.gid} --clear-groups sleep 60`],
      {
        env: { PAM_TYPE: 'open_session', PAM_USER: u.name, PATH: process.env.PATH },
        stdio: 'ignore',
      },
    );
    children.push(session);
    await until('the session in its login leaf', () => cgroupOf(session.pid!) === `${rel}/login`);
    for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'])
      assert.equal(statSync(join(sub, f)).uid, u.uid, `${f || 'the subtree'} is the user's`);
    await until(
      'the user process',
      () =>
        cgroupOf(session.pid!) === `${rel}/login` &&
        readFileSync(`/proc/${session.pid}/comm`, 'utf8').trim() === 'sleep',
    );

    // As crun does for a container: a cgroup beside the leaf, and the process moved into it, by the user.
    let m = asUser(`mkdir ${sub}/hutch-c1 && echo ${session.pid} > ${sub}/hutch-c1/cgroup.procs`);
    assert.equal(m.status, 0, m.stderr);
    assert.equal(cgroupOf(session.pid!), `${rel}/hutch-c1`);

    // A process of the same user that started outside the subtree cannot be moved in: the common
    // ancestor of the two cgroups is the root's, whose cgroup.procs the user may not write.
    const outside = spawn(
      'setpriv',
      [`--reuid=${u.uid}`, `--regid=${u.gid}`, '--clear-groups', 'sleep', '60'],
      {
        stdio: 'ignore',
      },
    );
    children.push(outside);
    await until(
      'the outside process',
      () => readFileSync(`/proc/${outside.pid}/comm`, 'utf8').trim() === 'sleep',
    );
    const sleeper = outside.pid!;
    m = asUser(`echo ${sleeper} > ${sub}/hutch-c1/cgroup.procs`);
    assert.notEqual(m.status, 0, 'the kernel refuses the move');
    assert.notEqual(cgroupOf(sleeper), `${rel}/hutch-c1`);
  });
});
