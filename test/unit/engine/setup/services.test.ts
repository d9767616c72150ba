/**
 * hutch setup's boot services and cgroup delegation without systemd,
 * planned against host roots that hold recorded files: which init is found,
 * what the delegation step sees in a recorded cgroup tree, and the script
 * the services run.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { bootScript, shq } from '../../../../src/engine/setup/boot-script.ts';
import { cgroupSubtreeStep } from '../../../../src/engine/setup/cgroup-subtree.ts';
import { diffLines } from '../../../../src/engine/setup/files.ts';
import { detectInit } from '../../../../src/engine/setup/init.ts';
import { serviceSteps } from '../../../../src/engine/setup/services.ts';
import type { SetupTarget } from '../../../../src/engine/setup/types.ts';
import { tempDir } from '../../../support/temp.ts';

function root(files: Record<string, string>): SetupTarget {
  const dir = tempDir();
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return { user: { name: 'ann', uid: 1000, gid: 1000, home: '/home/ann' }, hostRoot: dir, live: false };
}

describe('which init runs the host', () => {
  it("trusts PID 1's name first", () => {
    const t = root({ 'proc/1/comm': 'runit\n', 'run/openrc/softlevel': '' });
    assert.deepEqual(detectInit(t), { name: 'runit', why: 'PID 1 is runit' });
  });
  it('then what a running init leaves in /run', () => {
    assert.equal(detectInit(root({ 'proc/1/comm': 'init\n', 'run/openrc/softlevel': '' })).name, 'openrc');
    assert.equal(detectInit(root({ 'run/dinitctl': '' })).name, 'dinit');
    assert.equal(detectInit(root({ 'run/s6-rc/x': '' })).name, 's6');
    assert.equal(detectInit(root({ 'run/systemd/system/x': '' })).name, 'systemd');
  });
  it('then what is installed, and says so', () => {
    const f = detectInit(root({ 'etc/dinit.d/boot': '' }));
    assert.equal(f.name, 'dinit');
    assert.match(f.why, /installed \(no running init recognised\)/);
  });
  it('names PID 1 when it knows none, and obeys --init', () => {
    const t = root({ 'proc/1/comm': 'tini\n' });
    assert.deepEqual(detectInit(t), {
      name: undefined,
      why: 'PID 1 is tini, which is none of systemd, openrc, runit, dinit, s6',
    });
    assert.equal(detectInit({ ...t, init: 's6' }).name, 's6');
  });
});

describe('the delegation step on a recorded cgroup v2 tree', () => {
  const v2 = { 'sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids\n' };
  it('plans the subtree, the controllers the kernel offers at each level, and the chown', () => {
    const s = cgroupSubtreeStep(root({ ...v2, 'sys/fs/cgroup/cgroup.subtree_control': 'cpu memory\n' }));
    assert.equal(s.status, 'change');
    const diff = (s.diff ?? []).join('\n');
    assert.match(diff, /^mkdir -p \S+\/sys\/fs\/cgroup\/hutch\/user-1000$/m);
    assert.match(diff, /^echo '\+cpuset \+io \+pids' > \S+\/sys\/fs\/cgroup\/cgroup\.subtree_control$/m);
    assert.match(diff, /^echo '\+cpu \+cpuset \+io \+memory \+pids' > \S+\/hutch\/cgroup\.subtree_control$/m);
    assert.match(
      diff,
      /^chown 1000:1000 \S+\/hutch\/user-1000 \S+\/cgroup\.procs \S+\/cgroup\.subtree_control \S+\/cgroup\.threads$/m,
    );
    assert.deepEqual(
      s.undo?.map((a) => a.kind),
      ['cgroup', 'cgroup'],
    );
  });
  it('leaves out controllers the kernel does not offer', () => {
    const s = cgroupSubtreeStep(root({ 'sys/fs/cgroup/cgroup.controllers': 'memory pids\n' }));
    assert.match(s.detail, /with memory, pids,/);
  });
  it(
    'is ok once the tree is delegated, and asks again for a file not the user’s',
    { skip: process.getuid?.() === 0 ? false : 'giving files to another user (chown) needs root' },
    () => {
      const sub = 'sys/fs/cgroup/hutch/user-1000';
      const done = {
        ...v2,
        'sys/fs/cgroup/cgroup.subtree_control': 'cpuset cpu io memory pids\n',
        'sys/fs/cgroup/hutch/cgroup.subtree_control': 'cpuset cpu io memory pids\n',
        [`${sub}/cgroup.subtree_control`]: 'cpuset cpu io memory pids\n',
        [`${sub}/cgroup.procs`]: '',
        [`${sub}/cgroup.threads`]: '',
      };
      const t = root(done);
      for (const p of [sub, `${sub}/cgroup.procs`, `${sub}/cgroup.subtree_control`])
        chownSync(join(t.hostRoot, p), 1000, 1000);
      const before = cgroupSubtreeStep(t);
      assert.equal(before.status, 'change');
      assert.deepEqual(before.diff, [`chown 1000:1000 ${join(t.hostRoot, sub, 'cgroup.threads')}`]);
      chownSync(join(t.hostRoot, sub, 'cgroup.threads'), 1000, 1000);
      assert.equal(cgroupSubtreeStep(t).status, 'ok');
    },
  );
});

describe('the boot script', () => {
  const t = root({});
  for (const [init, setpriv, want] of [
    ['openrc', true, /exec setpriv --reuid=1000 --regid=1000 --init-groups env -i /],
    ['dinit', false, /exec su -s \/bin\/sh ann -c 'env -i HOME=\/home\/ann /],
    ['runit', false, /exec chpst -u ann env -i /],
    ['s6', false, /exec s6-setuidgid ann env -i /],
  ] as const) {
    it(`becomes the user with ${init === 'openrc' ? 'setpriv' : init === 'dinit' ? 'su' : `${init}'s tool`}, and parses`, () => {
      const text = bootScript(t, init, true, setpriv);
      assert.match(text, want);
      assert.match(text, /--filter restart-policy=always --filter restart-policy=unless-stopped/);
      const file = join(tempDir(), 'boot.sh');
      writeFileSync(file, text);
      assert.equal(spawnSync('sh', ['-n', file]).status, 0);
    });
  }
  it('leaves a PAM session of another user, or a closing one, alone', () => {
    const file = join(tempDir(), 'boot.sh');
    // The cgroup root is absent here, so a matching session would only make the runtime directory.
    writeFileSync(
      file,
      bootScript(t, 'openrc', true, true).replace(/\/run\/user\/1000/g, join(tempDir(), 'rt')),
    );
    for (const env of [
      { PAM_TYPE: 'open_session', PAM_USER: 'bob' },
      { PAM_TYPE: 'close_session', PAM_USER: 'ann' },
    ]) {
      const r = spawnSync('sh', [file, 'login'], { env: { ...env, PATH: process.env.PATH } });
      assert.equal(r.status, 0);
    }
    assert.equal(spawnSync('sh', [file, 'bogus']).status, 2);
  });
  it('quotes for sh only what needs it', () => {
    assert.equal(shq('/home/ann'), '/home/ann');
    assert.equal(shq("/home/a b'c"), `'/home/a b'\\''c'`);
  });
});

describe('the systemd user unit', () => {
  it("is not written through a directory of the user's home that is a link", () => {
    const t = root({ 'home/ann/.keep': '' });
    symlinkSync('/etc', join(t.hostRoot, 'home/ann/.config'));
    const [step] = serviceSteps({ ...t, init: 'systemd' });
    assert.equal(step?.status, 'manual');
    assert.match(step?.detail ?? '', /home\/ann\/\.config is a symbolic link/);
  });
  it('plans the unit and its enabling link, owned by the user', () => {
    const [step] = serviceSteps({ ...root({ 'home/ann/.keep': '' }), init: 'systemd' });
    assert.equal(step?.status, 'change');
    assert.ok(
      step?.diff?.some((l) => /hutch-restart\.service: \+ExecStart=\S+\/bin\/hutch start --all /.test(l)),
    );
    assert.ok(
      step?.diff?.includes(
        `ln -s /home/ann/.config/systemd/user/hutch-restart.service ${join(step.diff[0]!.split(':')[0]!, '../default.target.wants/hutch-restart.service')}`,
      ),
    );
  });
});

describe('file diffs', () => {
  it('shows the changed middle of a file as - and + lines', () => {
    assert.deepEqual(diffLines('f', 'a\nb\nc\n', 'a\nB\nc\n'), ['f: -b', 'f: +B']);
    assert.deepEqual(diffLines('f', null, 'x\n'), ['f: +x']);
    assert.deepEqual(diffLines('f', 'same\n', 'same\n'), []);
  });
});
