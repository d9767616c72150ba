/** `hutch setup` against an alternate root, so this machine's /etc is never touched. */
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
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
      'home/alice/.keep': '',
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
    // The user unit that brings containers back, enabled the way systemctl --user enable does, all alice's.
    const units = join(root, 'home/alice/.config/systemd/user');
    const unit = readFileSync(join(units, 'hutch-restart.service'), 'utf8');
    assert.match(
      unit,
      /^ExecStart=\/\S+\/bin\/hutch start --all --filter restart-policy=always --filter restart-policy=unless-stopped$/m,
    );
    assert.match(unit, /^WantedBy=default\.target$/m);
    const link = join(units, 'default.target.wants/hutch-restart.service');
    assert.equal(readlinkSync(link), '/home/alice/.config/systemd/user/hutch-restart.service');
    for (const p of [join(root, 'home/alice/.config'), units, join(units, 'hutch-restart.service')])
      assert.equal(statSync(p).uid, 1000, p);
    assert.equal(lstatSync(link).uid, 1000);

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
      'home/alice/.config',
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

  it('says there is nothing to enable where systemd is not the init, and that no init was recognised', () => {
    const root = hostRoot({ 'etc/passwd': passwd });
    const r = runHutch(['setup', '--user', 'alice', '--host-root', root, '--dry-run'], process.env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok +linger and cgroup delegation: systemd is not the init here/);
    assert.match(
      r.stdout,
      /ok +boot service: no init recognised .*choose one with --init openrc\|runit\|dinit\|s6/,
    );
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

/** The steps of a run that are not ok: empty on a second run. */
function notOk(root: string, extra: string[] = []): string[] {
  const r = runHutch(
    ['setup', '--user', 'alice', '--host-root', root, ...extra, '--format', 'json'],
    process.env,
  );
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { id: string; status: string }[])
    .filter((s) => s.status !== 'ok')
    .map((s) => s.id);
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

describe('hutch setup --host-root, boot services without systemd', () => {
  it('OpenRC on cgroup v2 with PAM: a delegated subtree, the login hook, the boot script and the service; idempotent; undone', () => {
    const root = hostRoot({
      'etc/passwd': passwd,
      'run/openrc/softlevel': '',
      'usr/bin/setpriv': '',
      'etc/runlevels/default/.keep': '',
      'etc/pam.d/common-session': 'session required pam_unix.so\n',
      'sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids\n',
      'sys/fs/cgroup/cgroup.subtree_control': 'memory\n',
    });
    const dry = runHutch(['setup', '--user', 'alice', '--host-root', root, '--dry-run'], process.env);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(
      dry.stdout,
      /would +cgroup delegation: systemd is not the init: delegate \S+\/sys\/fs\/cgroup\/hutch\/user-1000 to alice with cpu, cpuset, io, memory, pids/,
    );
    assert.match(
      dry.stdout,
      /echo '\+cpu \+cpuset \+io \+pids' > \S+\/sys\/fs\/cgroup\/cgroup\.subtree_control/,
    );
    assert.match(
      dry.stdout,
      /common-session: \+session optional pam_exec\.so quiet \/etc\/hutch\/boot-alice\.sh login/,
    );
    assert.match(dry.stdout, /would +boot service \(OpenRC\): \/run\/openrc exists: write the service/);
    assert.match(dry.stdout, /etc\/init\.d\/hutch\.alice: \+#!\/sbin\/openrc-run/);
    assert.match(dry.stdout, /ln -s \/etc\/init\.d\/hutch\.alice \S+\/etc\/runlevels\/default\/hutch\.alice/);
    assert.equal(existsSync(join(root, 'etc/init.d/hutch.alice')), false, 'dry run changes nothing');

    const real = runHutch(['setup', '--user', 'alice', '--host-root', root], process.env);
    assert.equal(real.status, 0, real.stderr);
    const script = readFileSync(join(root, 'etc/hutch/boot-alice.sh'), 'utf8');
    assert.equal(mode(join(root, 'etc/hutch/boot-alice.sh')), 0o755);
    assert.match(
      script,
      /exec setpriv --reuid=1000 --regid=1000 --init-groups env -i HOME=\/home\/alice USER=alice LOGNAME=alice XDG_RUNTIME_DIR=\/run\/user\/1000 PATH=\S+ \S+\/bin\/hutch start --all --filter restart-policy=always --filter restart-policy=unless-stopped$/m,
    );
    assert.match(script, /^sub=\/sys\/fs\/cgroup\/hutch\/user-1000$/m);
    assert.equal(
      spawnSync('sh', ['-n', join(root, 'etc/hutch/boot-alice.sh')]).status,
      0,
      'the script parses',
    );
    const service = readFileSync(join(root, 'etc/init.d/hutch.alice'), 'utf8');
    assert.match(service, /^\t\/etc\/hutch\/boot-alice\.sh start$/m);
    assert.equal(mode(join(root, 'etc/init.d/hutch.alice')), 0o755);
    assert.equal(readlinkSync(join(root, 'etc/runlevels/default/hutch.alice')), '/etc/init.d/hutch.alice');
    const sub = join(root, 'sys/fs/cgroup/hutch/user-1000');
    for (const p of [
      sub,
      join(sub, 'cgroup.procs'),
      join(sub, 'cgroup.subtree_control'),
      join(sub, 'cgroup.threads'),
    ])
      assert.equal(statSync(p).uid, 1000, p);
    assert.match(
      readFileSync(join(root, 'etc/pam.d/common-session'), 'utf8'),
      /pam_exec\.so quiet \/etc\/hutch\/boot-alice\.sh login\n$/,
    );

    assert.deepEqual(notOk(root), [], 'the second run changes nothing');

    const undo = runHutch(['setup', '--user', 'alice', '--host-root', root, '--undo'], process.env);
    assert.equal(undo.status, 0, undo.stderr);
    for (const gone of ['etc/init.d/hutch.alice', 'etc/runlevels/default/hutch.alice', 'etc/hutch'])
      assert.equal(existsSync(join(root, gone)), false, gone);
    assert.equal(
      readFileSync(join(root, 'etc/pam.d/common-session'), 'utf8'),
      'session required pam_unix.so\n',
    );
  });

  it('runit: a oneshot service directory linked where runsvdir looks, with chpst', () => {
    const root = hostRoot({ 'etc/passwd': passwd, 'run/runit/.keep': '', 'var/service/.keep': '' });
    assert.deepEqual(
      notOk(root).filter((id) => id.startsWith('service')),
      ['service:script', 'service'],
    );
    assert.match(
      readFileSync(join(root, 'etc/sv/hutch-alice/run'), 'utf8'),
      /^exec \/etc\/hutch\/boot-alice\.sh start 2>&1$/m,
    );
    assert.match(readFileSync(join(root, 'etc/sv/hutch-alice/finish'), 'utf8'), /^exec sv down \.$/m);
    assert.equal(mode(join(root, 'etc/sv/hutch-alice/run')), 0o755);
    assert.equal(readlinkSync(join(root, 'var/service/hutch-alice')), '/etc/sv/hutch-alice');
    assert.match(
      readFileSync(join(root, 'etc/hutch/boot-alice.sh'), 'utf8'),
      /^ {2}exec chpst -u alice env -i /m,
    );
    assert.deepEqual(notOk(root), []);
  });

  it("dinit: a scripted service that the boot service's waits-for.d names", () => {
    const root = hostRoot({
      'etc/passwd': passwd,
      'run/dinitctl': '',
      'etc/dinit.d/boot': 'type = internal\nwaits-for.d = boot.d\n',
    });
    notOk(root);
    assert.equal(
      readFileSync(join(root, 'etc/dinit.d/hutch-alice'), 'utf8'),
      "# hutch setup: alice's containers with a restart policy come back at boot.\ntype = scripted\ncommand = /etc/hutch/boot-alice.sh start\n",
    );
    assert.equal(readlinkSync(join(root, 'etc/dinit.d/boot.d/hutch-alice')), '/etc/dinit.d/hutch-alice');
    assert.deepEqual(notOk(root), []);
  });

  it("s6-rc: a oneshot source definition, in Artix's default bundle, with s6-setuidgid", () => {
    const root = hostRoot({
      'etc/passwd': passwd,
      'run/s6-rc/.keep': '',
      'etc/s6/adminsv/default/contents.d/.keep': '',
    });
    const dry = runHutch(['setup', '--user', 'alice', '--host-root', root, '--dry-run'], process.env);
    assert.match(
      dry.stdout,
      /would +boot service \(s6-rc\): .*then compile it into the boot database: s6-db-reload/,
    );
    notOk(root);
    assert.equal(readFileSync(join(root, 'etc/s6/adminsv/hutch-alice/type'), 'utf8'), 'oneshot\n');
    assert.equal(
      readFileSync(join(root, 'etc/s6/adminsv/hutch-alice/up'), 'utf8'),
      '/etc/hutch/boot-alice.sh start\n',
    );
    assert.equal(existsSync(join(root, 'etc/s6/adminsv/default/contents.d/hutch-alice')), true);
    assert.match(
      readFileSync(join(root, 'etc/hutch/boot-alice.sh'), 'utf8'),
      /^ {2}exec s6-setuidgid alice env -i /m,
    );
    assert.deepEqual(notOk(root), []);
  });

  it('--init overrides what was found, and refuses an init it does not know', () => {
    const root = hostRoot({ 'etc/passwd': passwd, 'run/openrc/.keep': '' });
    const r = runHutch(
      ['setup', '--user', 'alice', '--host-root', root, '--init', 'dinit', '--dry-run'],
      process.env,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /would +boot service \(dinit\): chosen with --init/);
    const bad = runHutch(['setup', '--user', 'alice', '--host-root', root, '--init', 'upstart'], process.env);
    assert.equal(bad.status, 125);
    assert.match(
      bad.stderr,
      /--init upstart: hutch writes service files for systemd, openrc, runit, dinit, s6/,
    );
  });

  it('will not replace an enabling link that is not its own', () => {
    const root = hostRoot({ 'etc/passwd': passwd, 'run/runit/.keep': '', 'var/service/.keep': '' });
    mkdirSync(join(root, 'var/service/hutch-alice'));
    const r = runHutch(['setup', '--user', 'alice', '--host-root', root], process.env);
    assert.equal(r.status, 125);
    assert.match(
      r.stdout,
      /MANUAL +boot service \(runit\): \S+var\/service\/hutch-alice exists and is not the link/,
    );
  });
});
