/**
 * `hutch doctor`'s cgroup delegation check on hosts whose init is not
 * systemd: the subtree of hutch setup, a session outside it, and none.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runDoctor } from '../../../../src/engine/doctor/index.ts';
import type { Check } from '../../../../src/engine/doctor/index.ts';
import { specHost } from '../../../../src/host/view.ts';
import type { HostSpec } from '../../../../src/host/view.ts';

const MOUNTINFO = '30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 none rw,nsdelegate\n';

function check(spec: HostSpec, id: string): Check {
  const report = runDoctor({
    host: specHost(spec),
    user: { uid: 1000, gid: 1000, name: 'alice' },
    rootless: true,
    storePath: '/home/alice/.local/share/hutch',
    env: { XDG_RUNTIME_DIR: '/run/user/1000' },
    helperPath: '/opt/hutch/native/build/hutch-helper',
  });
  const c = report.checks.find((k) => k.id === id);
  assert.ok(c, `the ${id} check is made`);
  return c;
}

const delegation = (spec: HostSpec): Check => check(spec, 'cgroup.delegation');

const base = {
  '/proc/self/mountinfo': MOUNTINFO,
  '/proc/1/comm': 'init\n',
  '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n',
};

describe('cgroup delegation without systemd', () => {
  it('says a session outside the delegated subtree must log in again', () => {
    const c = delegation({
      files: {
        ...base,
        '/proc/self/cgroup': '0::/\n',
        '/sys/fs/cgroup/hutch/user-1000/cgroup.controllers': 'cpuset cpu io memory pids\n',
      },
      stat: { '/sys/fs/cgroup/hutch/user-1000': { mode: '040755', uid: 1000 } },
    });
    assert.equal(c.status, 'WARN');
    assert.match(
      c.reason,
      /hutch setup delegated \/sys\/fs\/cgroup\/hutch\/user-1000 to you, but this session runs outside it/,
    );
    assert.match(c.fix ?? '', /log out and in again/);
  });

  it('names hutch setup as the fix where nothing is delegated', () => {
    const c = delegation({ files: { ...base, '/proc/self/cgroup': '0::/\n' } });
    assert.equal(c.status, 'WARN');
    assert.match(c.reason, /systemd is not the init, so nothing is delegated/);
    assert.match(c.fix ?? '', /^sudo hutch setup --user alice/);
  });

  it('names the missing controllers of the subtree, and setup as the fix', () => {
    const c = delegation({
      files: {
        ...base,
        '/proc/self/cgroup': '0::/hutch/user-1000/login\n',
        '/sys/fs/cgroup/hutch/user-1000/cgroup.controllers': 'memory pids\n',
      },
      stat: { '/sys/fs/cgroup/hutch/user-1000': { mode: '040755', uid: 1000 } },
    });
    assert.equal(c.status, 'WARN');
    assert.match(
      c.reason,
      /delegated in \/sys\/fs\/cgroup\/hutch\/user-1000 \(by hutch setup\): memory, pids; not delegated: cpu, io/,
    );
    assert.match(c.fix ?? '', /hutch setup --user alice/);
  });
});

describe('the boot service', () => {
  it('says containers with restart policies stay down after a reboot without it, and how to add it', () => {
    const c = check({ files: { ...base, '/proc/self/cgroup': '0::/\n' } }, 'session.boot-service');
    assert.equal(c.status, 'INFO');
    assert.match(c.reason, /no boot service of hutch setup \(\/etc\/hutch\/boot-alice\.sh\)/);
    assert.match(c.fix ?? '', /^sudo hutch setup --user alice$/);
  });
  it("finds systemd's user unit in the user's home", () => {
    const c = check(
      {
        files: {
          ...base,
          '/proc/1/comm': 'systemd\n',
          '/etc/passwd': 'alice:x:1000:1000::/home/alice:/bin/sh\n',
          '/home/alice/.config/systemd/user/default.target.wants/hutch-restart.service': '',
        },
      },
      'session.boot-service',
    );
    assert.equal(c.status, 'PASS');
    assert.match(c.reason, /^hutch-restart\.service is enabled/);
  });
});
