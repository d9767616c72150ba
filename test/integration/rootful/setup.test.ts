/** `hutch setup` against an alternate root, so this machine's /etc is never touched. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runHutch } from '../../support/hutch.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function hostRoot(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'hutch-setup-'));
  dirs.push(d);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), text);
  }
  return d;
}

const passwd =
  'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n';

describe('hutch setup --host-root', () => {
  it('allocates a range that overlaps nobody, the same in both files, and is idempotent', () => {
    const root = hostRoot({
      'etc/passwd': passwd,
      'etc/subuid': 'bob:100000:65536\n',
      'etc/subgid': 'bob:100000:65536\ncarol:165536:1000',
      'etc/tmpfiles.d/.keep': '',
    });
    const dry = runHutch(['setup', '--user', 'alice', '--host-root', root, '--dry-run'], process.env);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /would +sub-id ranges: allocate ids 166536-232071 to alice/);
    assert.match(dry.stdout, /etc\/subuid: \+alice:166536:65536/);
    assert.equal(
      readFileSync(join(root, 'etc/subuid'), 'utf8'),
      'bob:100000:65536\n',
      'dry run changes nothing',
    );

    const real = runHutch(['setup', '--user', 'alice', '--host-root', root], process.env);
    assert.equal(real.status, 0, real.stderr);
    assert.equal(readFileSync(join(root, 'etc/subuid'), 'utf8'), 'bob:100000:65536\nalice:166536:65536\n');
    assert.equal(
      readFileSync(join(root, 'etc/subgid'), 'utf8'),
      'bob:100000:65536\ncarol:165536:1000\nalice:166536:65536\n',
    );
    assert.match(
      readFileSync(join(root, 'etc/tmpfiles.d/hutch-alice.conf'), 'utf8'),
      /^d \/run\/user\/1000 0700 1000 1000 -$/m,
    );

    const again = runHutch(
      ['setup', '--user', 'alice', '--host-root', root, '--format', 'json'],
      process.env,
    );
    assert.equal(again.status, 0, again.stderr);
    const steps = JSON.parse(again.stdout) as { status: string }[];
    assert.deepEqual(new Set(steps.map((s) => s.status)), new Set(['ok']));
  });

  it('refuses to guess when ranges overlap another user', () => {
    const root = hostRoot({
      'etc/passwd': passwd,
      'etc/subuid': 'alice:100000:65536\nbob:150000:65536\n',
      'etc/subgid': 'alice:100000:65536\n',
    });
    const r = runHutch(['setup', '--user', 'alice', '--host-root', root], process.env);
    assert.equal(r.status, 125);
    assert.match(r.stdout, /MANUAL +sub-id ranges: .*overlap those of bob/);
    assert.equal(readFileSync(join(root, 'etc/subuid'), 'utf8'), 'alice:100000:65536\nbob:150000:65536\n');
  });

  it('names an unknown user', () => {
    const root = hostRoot({ 'etc/passwd': passwd });
    const r = runHutch(['setup', '--user', 'nobody-here', '--host-root', root, '--dry-run'], process.env);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /no user "nobody-here"/);
  });
});

describe('hutch setup on this host', () => {
  it(
    'has nothing left to do for the test user after the test setup ran it',
    { skip: process.env.HUTCH_TEST_STATE ? false : 'needs the prepared host of npm test' },
    () => {
      const r = runHutch(['setup', '--user', 'hutchtest', '--dry-run', '--format', 'json'], process.env);
      assert.equal(r.status, 0, r.stderr);
      const steps = JSON.parse(r.stdout) as { id: string; status: string }[];
      assert.deepEqual(
        steps.filter((s) => s.status !== 'ok'),
        [],
      );
    },
  );
});

describe('hutch setup --host-root, with systemd', () => {
  it('enables linger, delegates the controllers on cgroup v2, and opens ports when asked; idempotent', () => {
    const root = hostRoot({
      'etc/passwd': passwd,
      'run/systemd/system/.keep': '',
      'sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
      'etc/systemd/system/user@.service.d/other.conf': '[Service]\nDelegate=memory pids\n',
    });
    const args = ['setup', '--user', 'alice', '--host-root', root, '--unprivileged-port-start', '80'];
    const dry = runHutch([...args, '--dry-run'], process.env);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /would +linger: let alice's systemd manager run without a login/);
    assert.match(dry.stdout, /would +cgroup delegation: delegate cpu, cpuset, io to users' systemd managers/);
    assert.match(dry.stdout, /would +unprivileged ports: let users bind ports from 80 up/);

    const real = runHutch(args, process.env);
    assert.equal(real.status, 0, real.stderr);
    assert.equal(readFileSync(join(root, 'var/lib/systemd/linger/alice'), 'utf8'), '');
    assert.match(
      readFileSync(join(root, 'etc/systemd/system/user@.service.d/hutch-delegate.conf'), 'utf8'),
      /^\[Service\]\nDelegate=cpu cpuset io memory pids$/m,
    );
    assert.match(
      readFileSync(join(root, 'etc/sysctl.d/50-hutch-unprivileged-ports.conf'), 'utf8'),
      /^net\.ipv4\.ip_unprivileged_port_start = 80$/m,
    );

    const again = runHutch([...args, '--format', 'json'], process.env);
    assert.equal(again.status, 0, again.stderr);
    const steps = JSON.parse(again.stdout) as { id: string; status: string }[];
    assert.deepEqual(
      steps.filter((s) => s.status !== 'ok').map((s) => s.id),
      [],
      'the second run changes nothing',
    );

    // --undo takes it all back, the admin's own drop-in and sub-ids staying as they were.
    const plan = runHutch(
      ['setup', '--user', 'alice', '--host-root', root, '--undo', '--dry-run'],
      process.env,
    );
    assert.equal(plan.status, 0, plan.stderr);
    assert.match(plan.stdout, /would +undo: remove .*hutch-delegate\.conf/);
    const undo = runHutch(['setup', '--user', 'alice', '--host-root', root, '--undo'], process.env);
    assert.equal(undo.status, 0, undo.stderr);
    for (const gone of [
      'var/lib/systemd/linger/alice',
      'etc/systemd/system/user@.service.d/hutch-delegate.conf',
      'etc/sysctl.d/50-hutch-unprivileged-ports.conf',
      'var/lib/hutch/setup/alice.json',
    ])
      assert.equal(existsSync(join(root, gone)), false, gone);
    assert.equal(
      readFileSync(join(root, 'etc/systemd/system/user@.service.d/other.conf'), 'utf8'),
      '[Service]\nDelegate=memory pids\n',
    );
    assert.doesNotMatch(readFileSync(join(root, 'etc/subuid'), 'utf8'), /^alice:/m);
    const nothing = runHutch(['setup', '--user', 'alice', '--host-root', root, '--undo'], process.env);
    assert.match(nothing.stdout, /setup changed nothing for alice to take back/);
  });

  it('says there is nothing to enable where systemd is not the init', () => {
    const root = hostRoot({ 'etc/passwd': passwd });
    const r = runHutch(['setup', '--user', 'alice', '--host-root', root, '--dry-run'], process.env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok +linger and cgroup delegation: systemd is not the init here/);
  });

  it('refuses a port start that is no port', () => {
    const root = hostRoot({ 'etc/passwd': passwd });
    const r = runHutch(
      ['setup', '--user', 'alice', '--host-root', root, '--unprivileged-port-start', 'http'],
      process.env,
    );
    assert.equal(r.status, 125);
    assert.match(r.stderr, /--unprivileged-port-start http: give a port number/);
  });
});
