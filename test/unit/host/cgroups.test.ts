import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import {
  cgroupLayout,
  crunRefusesHybrid,
  hybridFixCommands,
  containerCgroupPath,
  delegatedSubtree,
  ownV2Cgroup,
  parseMountInfo,
  userDelegation,
} from '../../../src/host/cgroups.ts';
import type { CgroupMode } from '../../../src/host/cgroups.ts';
import { recordedHost, specHost } from '../../../src/host/view.ts';

const HOSTS = fileURLToPath(new URL('../../fixtures/hosts/', import.meta.url));

describe('parseMountInfo', () => {
  it('splits the fields around the separator, with optional fields present or not', () => {
    const [a, b] = parseMountInfo(
      '35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n' +
        '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n',
    );
    assert.deepEqual(a, {
      root: '/',
      mountPoint: '/sys/fs/cgroup',
      fsType: 'cgroup2',
      source: 'cgroup2',
      superOptions: ['rw', 'nsdelegate'],
    });
    assert.equal(b?.mountPoint, '/sys/fs/cgroup/unified');
  });
  it('undoes octal escapes and skips junk', () => {
    const m = parseMountInfo('60 27 0:52 / /mnt/my\\040disk rw - ext4 /dev/sdb1 rw\nnot a mount line\n');
    assert.equal(m.length, 1);
    assert.equal(m[0]?.mountPoint, '/mnt/my disk');
  });
});

describe('cgroupLayout of the recorded hosts', () => {
  const cases: Array<{
    host: string;
    mode: CgroupMode;
    v2Mount?: string;
    v2: string[];
    crunRefuses: boolean;
  }> = [
    {
      host: 'debian12-hybrid',
      mode: 'hybrid',
      v2Mount: '/sys/fs/cgroup/unified',
      v2: ['hugetlb'],
      crunRefuses: true,
    },
    {
      host: 'cgroupv2-delegated',
      mode: 'v2',
      v2Mount: '/sys/fs/cgroup',
      v2: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'],
      crunRefuses: false,
    },
    { host: 'rhel8-nfs-cgroupv1', mode: 'v1', v2: [], crunRefuses: false },
  ];
  for (const c of cases) {
    it(c.host, () => {
      const l = cgroupLayout(recordedHost(join(HOSTS, c.host)));
      assert.equal(l.mode, c.mode);
      assert.equal(l.source, 'mountinfo');
      assert.equal(l.v2Mount, c.v2Mount);
      assert.deepEqual(l.v2Controllers, c.v2);
      assert.equal(crunRefusesHybrid(l), c.crunRefuses);
    });
  }
  it('names the v1 controllers and the named hierarchy', () => {
    const l = cgroupLayout(recordedHost(join(HOSTS, 'rhel8-nfs-cgroupv1')));
    assert.deepEqual(l.v1.find((h) => h.mountPoint === '/sys/fs/cgroup/cpu,cpuacct')?.controllers, [
      'cpu',
      'cpuacct',
    ]);
    assert.equal(l.v1.find((h) => h.mountPoint === '/sys/fs/cgroup/systemd')?.name, 'systemd');
  });
});

describe('cgroupLayout without mountinfo', () => {
  it('v2 from /sys/fs/cgroup/cgroup.controllers', () => {
    const l = cgroupLayout(specHost({ files: { '/sys/fs/cgroup/cgroup.controllers': 'cpu memory pids\n' } }));
    assert.equal(l.mode, 'v2');
    assert.equal(l.source, 'sysfs');
    assert.deepEqual(l.v2Controllers, ['cpu', 'memory', 'pids']);
  });
  it('hybrid from /sys/fs/cgroup/unified beside v1 hierarchies', () => {
    const l = cgroupLayout(
      specHost({
        files: {
          '/sys/fs/cgroup/memory/cgroup.procs': '',
          '/sys/fs/cgroup/cpu,cpuacct/cgroup.procs': '',
          '/sys/fs/cgroup/unified/cgroup.controllers': '',
        },
      }),
    );
    assert.equal(l.mode, 'hybrid');
    assert.deepEqual(l.v2Controllers, []);
    assert.equal(crunRefusesHybrid(l), false);
    assert.deepEqual(
      l.v1.map((h) => h.controllers),
      [['cpu', 'cpuacct'], ['memory']],
    );
  });
  it('none when nothing is there', () => assert.equal(cgroupLayout(specHost({})).mode, 'none'));
});

describe('hybridFixCommands', () => {
  it('mounts each v2 controller as a v1 hierarchy', () => {
    const l = cgroupLayout(recordedHost(join(HOSTS, 'debian12-hybrid')));
    assert.deepEqual(hybridFixCommands(l), [
      'mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb',
    ]);
    assert.deepEqual(hybridFixCommands(l, 'sudo '), [
      'sudo mkdir -p /sys/fs/cgroup/hugetlb && sudo mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb',
    ]);
  });
});

describe('userDelegation', () => {
  const svc = '/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service';
  it('reads user@UID.service where systemd is PID 1', () => {
    const host = recordedHost(join(HOSTS, 'cgroupv2-delegated'));
    const d = userDelegation(host, cgroupLayout(host), 1000, true);
    assert.deepEqual(d, {
      path: svc,
      source: 'systemd-user-service',
      exists: true,
      writable: true,
      controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'],
    });
    assert.equal(
      containerCgroupPath(d!, cgroupLayout(host), 'abc'),
      '/user.slice/user-1000.slice/user@1000.service/hutch-abc',
    );
  });
  it('sees an empty delegation', () => {
    const host = recordedHost(join(HOSTS, 'cgroupv2-undelegated'));
    const d = userDelegation(host, cgroupLayout(host), 1000, true);
    assert.equal(d?.writable, true);
    assert.deepEqual(d?.controllers, []);
  });
  it('a root-owned cgroup is not writable', () => {
    const host = specHost({
      files: {
        '/sys/fs/cgroup/cgroup.controllers': 'memory\n',
        [`${svc}/cgroup.controllers`]: 'memory pids\n',
      },
    });
    const d = userDelegation(host, cgroupLayout(host), 1000, true);
    assert.equal(d?.exists, true);
    assert.equal(d?.writable, false);
  });
  it('a missing user manager', () => {
    const host = specHost({ files: { '/sys/fs/cgroup/cgroup.controllers': 'memory\n' } });
    assert.equal(userDelegation(host, cgroupLayout(host), 1000, true)?.exists, false);
  });
  it("uses the process's own cgroup without systemd", () => {
    const host = specHost({
      files: {
        '/sys/fs/cgroup/cgroup.controllers': 'cpu memory pids\n',
        '/proc/self/cgroup': '0::/hutch-alice\n',
        '/sys/fs/cgroup/hutch-alice/cgroup.controllers': 'memory pids\n',
      },
      stat: { '/sys/fs/cgroup/hutch-alice': { mode: '040755', uid: 1000 } },
    });
    assert.equal(ownV2Cgroup(host), '/hutch-alice');
    const d = userDelegation(host, cgroupLayout(host), 1000, false);
    assert.equal(d?.source, 'own-cgroup');
    assert.equal(d?.path, '/sys/fs/cgroup/hutch-alice');
    assert.equal(d?.writable, true);
    assert.deepEqual(d?.controllers, ['memory', 'pids']);
  });
  it('finds the subtree hutch setup delegated, from a leaf inside it, and puts containers beside the leaf', () => {
    const host = specHost({
      files: {
        '/sys/fs/cgroup/cgroup.controllers': 'cpu io memory pids\n',
        '/proc/self/cgroup': '0::/hutch/user-1000/login\n',
        '/sys/fs/cgroup/hutch/user-1000/cgroup.controllers': 'cpu io memory pids\n',
      },
      stat: { '/sys/fs/cgroup/hutch/user-1000': { mode: '040755', uid: 1000 } },
    });
    assert.equal(delegatedSubtree(1000), '/hutch/user-1000');
    const d = userDelegation(host, cgroupLayout(host), 1000, false);
    assert.equal(d?.source, 'hutch-setup');
    assert.equal(d?.path, '/sys/fs/cgroup/hutch/user-1000');
    assert.equal(d?.writable, true);
    assert.deepEqual(d?.controllers, ['cpu', 'io', 'memory', 'pids']);
    assert.equal(containerCgroupPath(d!, cgroupLayout(host), 'abc'), '/hutch/user-1000/hutch-abc');
  });
  it("another user's subtree is not this user's", () => {
    const host = specHost({
      files: {
        '/sys/fs/cgroup/cgroup.controllers': 'memory\n',
        '/proc/self/cgroup': '0::/hutch/user-1001/login\n',
      },
      stat: { '/sys/fs/cgroup/hutch/user-1001/login': { mode: '040755', uid: 1001 } },
    });
    const d = userDelegation(host, cgroupLayout(host), 1000, false);
    assert.equal(d?.source, 'own-cgroup');
    assert.equal(d?.writable, false);
  });
  it('does not apply outside cgroup v2', () => {
    const host = recordedHost(join(HOSTS, 'debian12-hybrid'));
    assert.equal(userDelegation(host, cgroupLayout(host), 1001, false), undefined);
  });
});
