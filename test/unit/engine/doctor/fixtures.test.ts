/**
 * `hutch doctor` against the recorded hosts of test/fixtures/hosts: for each
 * host, the status of the checks that matter there and the fix text of each
 * failing or warning one.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { TOPICS, runDoctor } from '../../../../src/engine/doctor/index.ts';
import type {
  BtrfsProbeResult,
  CheckStatus,
  DoctorContext,
  DoctorReport,
  OverlayProbeResult,
} from '../../../../src/engine/doctor/index.ts';
import type { ZfsProbeResult } from '../../../../src/engine/doctor/types.ts';
import { recordedHost } from '../../../../src/host/view.ts';

const HOSTS = fileURLToPath(new URL('../../../fixtures/hosts/', import.meta.url));
const HELPER = '/opt/hutch/native/build/hutch-helper';

interface Expect {
  status: CheckStatus;
  reason?: RegExp;
  /** Each must match the fix text. */
  fix?: RegExp[];
}

interface Case {
  name: string;
  host: string;
  rootless?: boolean;
  user?: DoctorContext['user'];
  env?: Record<string, string>;
  storePath?: string;
  probe?: OverlayProbeResult;
  btrfsProbe?: BtrfsProbeResult;
  checks: Record<string, Expect>;
  /** Checks that must not be reported. */
  absent?: string[];
  ok: boolean;
}

const alice = { uid: 1000, gid: 1000, name: 'alice' };
const root = { uid: 0, gid: 0, name: 'root' };

const cases: Case[] = [
  {
    name: 'debian12-hybrid, rootless (this machine, recorded)',
    host: 'debian12-hybrid',
    user: { uid: 1001, gid: 1001, name: 'hutchtest' },
    checks: {
      'cgroup.version': {
        status: 'INFO',
        reason: /^hybrid: cgroup v1 controllers .* cgroup v2 hierarchy at \/sys\/fs\/cgroup\/unified/,
      },
      'cgroup.hybrid': {
        status: 'WARN',
        reason:
          /holds hugetlb, so crun refuses to run \("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"\); hutch falls back to runc/,
        fix: [
          /^sudo mkdir -p \/sys\/fs\/cgroup\/hugetlb && sudo mount -t cgroup -o hugetlb cgroup \/sys\/fs\/cgroup\/hugetlb$/m,
          /sudo hutch setup --user hutchtest/,
        ],
      },
      'runtime.oci': { status: 'PASS', reason: /hutch uses runc: crun refuses/ },
      'cgroup.delegation': { status: 'WARN', reason: /hybrid cgroups .* cannot be delegated.*--memory/ },
      'session.linger': { status: 'INFO', reason: /PID 1 is process_api, not systemd/ },
      'session.runtime-dir': { status: 'WARN', fix: [/^export XDG_RUNTIME_DIR=\/run\/user\/1001$/] },
      'subid.ranges': { status: 'PASS', reason: /131072 ids/ },
      'idmap.newuidmap': { status: 'PASS', reason: /setuid root/ },
      'device.fuse': { status: 'WARN', fix: [/chmod 0666 \/dev\/fuse/] },
      'device.tun': { status: 'FAIL', reason: /0600/, fix: [/^sudo chmod 0666 \/dev\/net\/tun$/m] },
      'tool.crun': { status: 'PASS', reason: /^1\.8\.1 \(\/usr\/bin\/crun\)$/ },
      'tool.runc': { status: 'PASS', reason: /\/usr\/sbin\/runc/ },
      'store.driver': { status: 'PASS', reason: /^overlay: the store is on ext4/ },
    },
    ok: false,
  },
  {
    name: 'debian12-hybrid, rootful',
    host: 'debian12-hybrid',
    rootless: false,
    user: root,
    storePath: '/var/lib/hutch',
    checks: {
      'cgroup.hybrid': {
        status: 'WARN',
        fix: [
          /^mkdir -p \/sys\/fs\/cgroup\/hugetlb && mount -t cgroup -o hugetlb cgroup \/sys\/fs\/cgroup\/hugetlb$/,
        ],
      },
      'cgroup.controllers': { status: 'PASS', reason: /memory, pids, cpu, blkio/ },
      'device.fuse': { status: 'PASS' },
    },
    absent: [
      'userns.max',
      'subid.ranges',
      'idmap.newuidmap',
      'cgroup.delegation',
      'session.linger',
      'session.runtime-dir',
      'device.tun',
      'net.rootless',
      'net.ports',
      'kernel.rootless-overlay',
    ],
    ok: true,
  },
  {
    name: 'cgroupv2-delegated',
    host: 'cgroupv2-delegated',
    env: { XDG_RUNTIME_DIR: '/run/user/1000' },
    checks: {
      'kernel.rootless-overlay': { status: 'PASS', reason: /needs 5\.13 with SELinux enforcing/ },
      'cgroup.version': { status: 'INFO', reason: /^cgroup v2/ },
      'cgroup.delegation': {
        status: 'PASS',
        reason: /memory, pids, cpu, io are delegated to user@1000\.service/,
      },
      'idmap.newuidmap': { status: 'PASS', reason: /file capability cap_setuid=ep/ },
      'idmap.newgidmap': { status: 'PASS', reason: /file capability cap_setgid=ep/ },
      'session.linger': { status: 'PASS' },
      'session.runtime-dir': { status: 'PASS', reason: /\/run\/user\/1000\/hutch/ },
      'tool.pasta': { status: 'PASS', reason: /0\^20240326\.g4988e2b/ },
      'tool.runc': { status: 'INFO' },
      'runtime.oci': { status: 'PASS', reason: /hutch uses crun/ },
      'store.filesystem': { status: 'INFO', reason: /on btrfs/ },
      'store.driver': { status: 'PASS', reason: /^overlay: the store is on btrfs/ },
      'store.btrfs': { status: 'INFO', reason: /subvolume test was not made/ },
    },
    absent: ['cgroup.hybrid', 'userns.clone', 'userns.apparmor', 'subid.syntax', 'store.overlay-probe'],
    ok: true,
  },
  {
    name: 'cgroupv2-delegated, btrfs test passed',
    host: 'cgroupv2-delegated',
    env: { XDG_RUNTIME_DIR: '/run/user/1000' },
    btrfsProbe: { ok: true },
    checks: {
      'store.btrfs': { status: 'PASS', reason: /created and deleted/ },
      'store.driver': { status: 'PASS', reason: /^btrfs: the store is on btrfs, where this user may create/ },
    },
    ok: true,
  },
  {
    name: 'cgroupv2-delegated, btrfs without user_subvol_rm_allowed',
    host: 'cgroupv2-delegated',
    env: { XDG_RUNTIME_DIR: '/run/user/1000' },
    btrfsProbe: {
      ok: false,
      reason: 'the btrfs at /home is mounted without user_subvol_rm_allowed',
      hint: 'As root: mount -o remount,user_subvol_rm_allowed /home',
    },
    checks: {
      'store.btrfs': {
        status: 'WARN',
        reason: /cannot work here: the btrfs at \/home is mounted without user_subvol_rm_allowed/,
        fix: [/remount,user_subvol_rm_allowed/],
      },
      'store.driver': { status: 'PASS', reason: /^overlay: .*; btrfs is not used: the btrfs at \/home/ },
    },
    ok: true,
  },
  {
    name: 'cgroupv2-delegated, rootful',
    host: 'cgroupv2-delegated',
    rootless: false,
    user: root,
    storePath: '/var/lib/hutch',
    checks: {
      'cgroup.controllers': { status: 'PASS', reason: /memory, pids, cpu, io are available/ },
    },
    absent: ['cgroup.delegation', 'subid.ranges'],
    ok: true,
  },
  {
    name: 'cgroupv2-undelegated',
    host: 'cgroupv2-undelegated',
    checks: {
      'userns.clone': {
        status: 'FAIL',
        fix: [
          /^sudo sysctl -w kernel\.unprivileged_userns_clone=1$/m,
          /echo 'kernel\.unprivileged_userns_clone=1' \| sudo tee \/etc\/sysctl\.d\//,
        ],
      },
      'cgroup.delegation': {
        status: 'WARN',
        reason: /not delegated: memory, pids, cpu, io, so --memory.*--cpus.* refused with an error/,
        fix: [
          /Delegate=cpu cpuset io memory pids/,
          /\/etc\/systemd\/system\/user@\.service\.d\/delegate\.conf/,
          /systemctl daemon-reload/,
        ],
      },
      'session.linger': { status: 'WARN', fix: [/^sudo loginctl enable-linger alice$/] },
      'session.runtime-dir': {
        status: 'WARN',
        reason: /not set/,
        fix: [/^export XDG_RUNTIME_DIR=\/run\/user\/1000$/],
      },
      'tool.catatonit': { status: 'WARN', fix: [/^sudo apt-get install -y catatonit$/] },
      'tool.pasta': { status: 'INFO' },
      'net.rootless': { status: 'PASS', reason: /slirp4netns/ },
      'net.ports': { status: 'INFO', reason: /below 1024/, fix: [/ip_unprivileged_port_start=80/] },
    },
    ok: false,
  },
  {
    name: 'ubuntu-apparmor-userns',
    host: 'ubuntu-apparmor-userns',
    env: { XDG_RUNTIME_DIR: '/run/user/1000' },
    checks: {
      'userns.apparmor': {
        status: 'FAIL',
        reason: /apparmor_restrict_unprivileged_userns is 1/,
        fix: [
          new RegExp(`profile hutch-helper ${HELPER} flags=\\(unconfined\\)`),
          /userns,/,
          /sudo tee \/etc\/apparmor\.d\/hutch-helper/,
          /^sudo apparmor_parser -r \/etc\/apparmor\.d\/hutch-helper$/m,
          /kernel\.apparmor_restrict_unprivileged_userns=0/,
        ],
      },
      'userns.clone': { status: 'PASS' },
      'cgroup.delegation': { status: 'WARN', reason: /not delegated: io, so --blkio-weight/ },
      'tool.pasta': { status: 'PASS', reason: /^2024_03_26\.4988e2b/ },
    },
    ok: false,
  },
  {
    name: 'no-subids',
    host: 'no-subids',
    env: { XDG_RUNTIME_DIR: '/run/user/1001' },
    checks: {
      'subid.ranges': {
        status: 'FAIL',
        reason:
          /no range in \/etc\/subuid or \/etc\/subgid: hutch falls back to a single-id mapping .* files owned by other users will not work/,
        fix: [
          /^sudo hutch setup --user alice$/m,
          /sudo usermod --add-subuids 165536-231071 --add-subgids 165536-231071 alice/,
        ],
      },
      'idmap.newuidmap': { status: 'FAIL', fix: [/^sudo apt-get install -y uidmap$/] },
      'idmap.newgidmap': { status: 'FAIL', fix: [/^sudo apt-get install -y uidmap$/] },
      'session.runtime-dir': {
        status: 'WARN',
        reason: /owned by uid 1001, not by you/,
        fix: [/\/run\/user\/1000/],
      },
    },
    absent: ['subid.overlap'],
    ok: false,
  },
  {
    name: 'overlapping-subids',
    host: 'overlapping-subids',
    checks: {
      'subid.ranges': { status: 'PASS' },
      'subid.overlap': {
        status: 'WARN',
        reason: /\/etc\/subuid line 2: bob 150000-215535/,
        fix: [
          /--del-subuids 100000-165535 --del-subgids 100000-165535 --add-subuids \d+-\d+ --add-subgids \d+-\d+ alice/,
        ],
      },
      'subid.syntax': {
        status: 'WARN',
        reason: /\/etc\/subuid line 3: the start "abc" is not a whole number/,
        fix: [/^sudoedit \/etc\/subuid$/],
      },
    },
    ok: true,
  },
  {
    name: 'zfs-store-2.1',
    host: 'zfs-store-2.1',
    checks: {
      'store.filesystem': { status: 'INFO', reason: /on zfs \(OpenZFS 2\.1\.5/ },
      'store.driver': {
        status: 'WARN',
        reason:
          /^fuse-overlayfs: .*OpenZFS 2\.1\.5.*overlay needs OpenZFS 2\.2, and a rootless user cannot create ZFS datasets/,
        fix: [/upgrade OpenZFS to 2\.2/, /HUTCH_ROOT=/],
      },
      'tool.zfs': { status: 'PASS', reason: /^2\.1\.5/ },
    },
    absent: ['store.overlay-probe'],
    ok: true,
  },
  {
    name: 'zfs-store-2.1, rootful',
    host: 'zfs-store-2.1',
    rootless: false,
    user: root,
    storePath: '/var/lib/hutch',
    checks: {
      'store.driver': { status: 'WARN', reason: /^fuse-overlayfs: .*overlay needs OpenZFS 2\.2;/ },
    },
    ok: true,
  },
  {
    name: 'zfs-store-2.2',
    host: 'zfs-store-2.2',
    checks: {
      'store.driver': {
        status: 'PASS',
        reason: /^overlay: the store is on OpenZFS 2\.2\.2.*supports overlay/,
      },
      'userns.apparmor': { status: 'PASS', reason: /\/etc\/apparmor\.d\/hutch-helper allows them/ },
    },
    ok: true,
  },
  {
    name: 'zfs-store-2.2, a store made with fuse-overlayfs before the upgrade',
    host: 'zfs-store-2.2',
    storePath: '/home/alice/old-store',
    checks: {
      'store.driver': {
        status: 'WARN',
        reason:
          /^fuse-overlayfs: recorded in the store when it was made; a new store here would get overlay: the store is on OpenZFS 2\.2/,
        fix: [/hutch system reset/],
      },
    },
    ok: true,
  },
  {
    name: 'zfs-store-2.2 with a failing test mount',
    host: 'zfs-store-2.2',
    probe: { ok: false, error: 'mount overlay: Invalid argument', dir: '/home/alice/.hutch-overlay-probe-x' },
    checks: {
      'store.overlay-probe': { status: 'WARN', reason: /failed: mount overlay: Invalid argument/ },
      'store.driver': { status: 'WARN', reason: /^fuse-overlayfs: .*test mount of kernel overlay failed/ },
    },
    ok: true,
  },
  {
    name: 'alpine-cgroupv2-setup: OpenRC, the subtree hutch setup delegated, a login inside it',
    host: 'alpine-cgroupv2-setup',
    env: { XDG_RUNTIME_DIR: '/run/user/1000' },
    checks: {
      'cgroup.delegation': {
        status: 'PASS',
        reason: /delegated in \/sys\/fs\/cgroup\/hutch\/user-1000 \(by hutch setup\): --memory/,
      },
      'session.boot-service': {
        status: 'PASS',
        reason: /^\/etc\/hutch\/boot-alice\.sh runs at boot: containers with restart policies/,
      },
    },
    ok: false,
  },
  {
    name: 'rhel8-nfs-cgroupv1',
    host: 'rhel8-nfs-cgroupv1',
    checks: {
      'kernel.rootless-overlay': { status: 'WARN', reason: /4\.18\.0 is older than 5\.11/ },
      'userns.max': {
        status: 'FAIL',
        fix: [/^sudo sysctl -w user\.max_user_namespaces=28633$/m, /sysctl\.d/],
      },
      'idmap.newuidmap': { status: 'PASS', reason: /cap_setuid\+ep/ },
      'idmap.newgidmap': {
        status: 'FAIL',
        fix: [/^sudo chmod u\+s \/usr\/bin\/newgidmap$/m, /sudo setcap cap_setgid\+ep \/usr\/bin\/newgidmap/],
      },
      'cgroup.version': { status: 'INFO', reason: /^cgroup v1/ },
      'cgroup.delegation': {
        status: 'WARN',
        reason: /cgroup v1 cannot be delegated/,
        fix: [/^sudo grubby --update-kernel=ALL --args=systemd\.unified_cgroup_hierarchy=1/],
      },
      'runtime.oci': { status: 'PASS', reason: /runc \(crun is not installed\)/ },
      'store.filesystem': { status: 'INFO', reason: /on nfs/ },
      'store.driver': {
        status: 'WARN',
        reason: /^vfs: .*NFS is not suitable.*fuse-overlayfs is not installed/,
        fix: [/^export HUTCH_ROOT=\/var\/tmp\/hutch-1000/m, /^sudo dnf install -y fuse-overlayfs$/m],
      },
    },
    absent: ['store.overlay-probe'],
    ok: false,
  },
];

function run(c: Case, probeCalls?: { n: number }): DoctorReport {
  const user = c.user ?? alice;
  const rootless = c.rootless ?? true;
  return runDoctor({
    host: recordedHost(join(HOSTS, c.host)),
    user,
    rootless,
    storePath: c.storePath ?? `/home/${user.name}/.local/share/hutch`,
    env: c.env ?? {},
    helperPath: HELPER,
    probeOverlay: c.probe
      ? () => {
          if (probeCalls) probeCalls.n++;
          return c.probe as OverlayProbeResult;
        }
      : undefined,
    probeBtrfs: c.btrfsProbe ? () => c.btrfsProbe as BtrfsProbeResult : undefined,
  });
}

describe('hutch doctor on recorded hosts', () => {
  for (const c of cases) {
    describe(c.name, () => {
      const report = run(c);
      const byId = new Map(report.checks.map((k) => [k.id, k]));
      for (const [id, want] of Object.entries(c.checks)) {
        it(`${id} is ${want.status}`, () => {
          const got = byId.get(id);
          assert.ok(got, `${id} is missing; have ${[...byId.keys()].join(', ')}`);
          assert.equal(got.status, want.status, got.reason);
          if (want.reason) assert.match(got.reason, want.reason);
          for (const re of want.fix ?? []) assert.match(got.fix ?? '(no fix)', re);
        });
      }
      if (c.absent) {
        it('leaves out what does not apply', () => {
          for (const id of c.absent ?? []) assert.equal(byId.get(id), undefined, id);
        });
      }
      it('every FAIL says how to fix it', () => {
        for (const k of report.checks.filter((x) => x.status === 'FAIL'))
          assert.ok(k.fix && k.fix.length > 0, k.id);
      });
      it(`ok is ${c.ok}, and the summary counts the checks`, () => {
        assert.equal(report.ok, c.ok);
        const total = report.summary.PASS + report.summary.WARN + report.summary.FAIL + report.summary.INFO;
        assert.equal(total, report.checks.length);
        assert.equal(report.summary.FAIL === 0, report.ok);
      });
      it('ids are unique and topics known', () => {
        assert.equal(byId.size, report.checks.length);
        for (const k of report.checks) assert.ok((TOPICS as readonly string[]).includes(k.topic), k.topic);
      });
    });
  }
});

describe('the overlay test mount', () => {
  it('is made once where kernel overlay may work', () => {
    const calls = { n: 0 };
    const c = cases.find((x) => x.name === 'zfs-store-2.2 with a failing test mount');
    assert.ok(c);
    run(c, calls);
    assert.equal(calls.n, 1);
  });
  it('is skipped where kernel overlay cannot work (NFS, old OpenZFS)', () => {
    for (const host of ['rhel8-nfs-cgroupv1', 'zfs-store-2.1']) {
      const calls = { n: 0 };
      const r = run({ name: host, host, probe: { ok: true }, checks: {}, ok: true }, calls);
      assert.equal(calls.n, 0, host);
      assert.equal(
        r.checks.find((k) => k.id === 'store.overlay-probe'),
        undefined,
      );
    }
  });
  it('a working test mount passes', () => {
    const r = run({
      name: 'x',
      host: 'cgroupv2-undelegated',
      probe: { ok: true, dir: '/home/.p' },
      checks: {},
      ok: false,
    });
    const probe = r.checks.find((k) => k.id === 'store.overlay-probe');
    assert.equal(probe?.status, 'PASS');
    assert.match(probe?.reason ?? '', /userxattr.*in \/home\/\.p worked/);
    assert.match(
      r.checks.find((k) => k.id === 'store.driver')?.reason ?? '',
      /^overlay: .*test mount .* worked/,
    );
  });
  it('a failing one without fuse-overlayfs falls back to vfs and says what to install', () => {
    const r = run({
      name: 'x',
      host: 'cgroupv2-undelegated',
      probe: { ok: false, error: 'boom' },
      checks: {},
      ok: false,
    });
    const d = r.checks.find((k) => k.id === 'store.driver');
    assert.equal(d?.status, 'WARN');
    assert.match(d?.reason ?? '', /^vfs: .*failed: boom/);
    assert.match(d?.fix ?? '', /^sudo apt-get install -y fuse-overlayfs$/m);
  });
});

describe('the JSON form', () => {
  it('is the report itself and survives a round trip', () => {
    const r = run(cases[0] as Case);
    const back = JSON.parse(JSON.stringify(r)) as DoctorReport;
    assert.deepEqual(back, r);
    assert.deepEqual(Object.keys(back).sort(), ['checks', 'ok', 'rootless', 'storePath', 'summary', 'user']);
    assert.deepEqual(Object.keys(back.summary), ['PASS', 'WARN', 'FAIL', 'INFO']);
  });
});

describe('zfs_dataset in hutch.toml', () => {
  const zfsRun = (rootless: boolean, probe: ZfsProbeResult): DoctorReport =>
    runDoctor({
      host: recordedHost(join(HOSTS, 'zfs-store-2.1')),
      user: rootless ? alice : root,
      rootless,
      storePath: rootless ? '/home/alice/.local/share/hutch' : '/var/lib/hutch',
      env: {},
      helperPath: HELPER,
      zfsDataset: 'tank/hutch',
      probeZfs: () => probe,
    });
  const check = (r: DoctorReport, id: string) => r.checks.find((k) => k.id === id);

  it('rootful with the dataset there: the zfs driver, and the dataset passes', () => {
    const r = zfsRun(false, { ok: true, dataset: 'tank/hutch' });
    assert.equal(check(r, 'store.zfs')?.status, 'PASS');
    assert.match(check(r, 'store.driver')?.reason ?? '', /^zfs: zfs_dataset is set to tank\/hutch/);
  });

  it('rootful with the dataset missing: a failure with the command that makes it', () => {
    const r = zfsRun(false, {
      ok: false,
      reason: 'the dataset tank/hutch does not exist',
      hint: 'zfs create x',
    });
    assert.equal(check(r, 'store.zfs')?.status, 'FAIL');
    assert.match(
      check(r, 'store.zfs')?.reason ?? '',
      /cannot work here: the dataset tank\/hutch does not exist/,
    );
    assert.equal(check(r, 'store.zfs')?.fix, 'zfs create x');
  });

  it('rootless: passed over, and the driver is another', () => {
    const r = zfsRun(true, { ok: false, reason: 'only root', hint: 'h' });
    assert.equal(check(r, 'store.zfs')?.status, 'INFO');
    assert.match(check(r, 'store.zfs')?.reason ?? '', /set but not used/);
    assert.doesNotMatch(check(r, 'store.driver')?.reason ?? '', /^zfs/);
  });
});
