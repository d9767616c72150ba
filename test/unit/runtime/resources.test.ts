import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { describe, it } from 'node:test';
import { specHost } from '../../../src/host/view.ts';
import type { HostSpec } from '../../../src/host/view.ts';
import {
  availableControllers,
  buildResources,
  checkControllers,
  DEFAULT_SHM_SIZE,
  deviceNumbers,
  parseBytes,
  parseCpuList,
  parseDevice,
  parseShmSize,
  parseSysctls,
  parseUlimit,
  UNLIMITED_STANDIN,
} from '../../../src/runtime/resources.ts';

const MiB = 1024 * 1024;

function hutchCode(code: string, text?: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.equal((e as { code?: string }).code, code, String(e));
    if (text) assert.match((e as Error).message, text);
    return true;
  };
}

/** A host with two online CPUs. */
const twoCpus = specHost({ files: { '/sys/devices/system/cpu/online': '0-1\n' } });

describe('parseBytes', () => {
  const cases: Array<[string | number, number]> = [
    ['1024', 1024],
    [2048, 2048],
    ['10b', 10],
    ['64k', 64 * 1024],
    ['64m', 64 * MiB],
    ['64M', 64 * MiB],
    ['64mb', 64 * MiB],
    ['64MiB', 64 * MiB],
    ['2g', 2 * 1024 * MiB],
    ['1t', 1024 * 1024 * MiB],
    ['1.5g', 1536 * MiB],
  ];
  for (const [input, bytes] of cases)
    it(`${input} is ${bytes}`, () => assert.equal(parseBytes(input, '--x'), bytes));
  it('refuses what is not a size, naming the flag', () => {
    for (const bad of ['', 'm', '-1', '12q', '1e6', '64 mm', '0x10'])
      assert.throws(() => parseBytes(bad, '--memory'), hutchCode('BAD_FLAG', /^--memory: /), bad);
  });
});

describe('buildResources: memory', () => {
  it('gives swap twice the memory by default', () => {
    const r = buildResources({ memory: '64m' }, twoCpus);
    assert.deepEqual(r.resources, { memory: { limit: 64 * MiB, swap: 128 * MiB } });
    assert.deepEqual([...r.needs], ['memory']);
    assert.deepEqual(r.requestedBy.get('memory'), ['--memory']);
  });
  it('takes --memory-swap as the total, -1 as unlimited', () => {
    assert.equal(
      buildResources({ memory: '64m', memorySwap: '64m' }, twoCpus).resources.memory?.swap,
      64 * MiB,
    );
    assert.equal(
      buildResources({ memory: '64m', memorySwap: '1g' }, twoCpus).resources.memory?.swap,
      1024 * MiB,
    );
    assert.equal(buildResources({ memory: '64m', memorySwap: -1 }, twoCpus).resources.memory?.swap, -1);
  });
  it('refuses swap below memory, swap without memory, and tiny limits', () => {
    assert.throws(() => buildResources({ memory: '64m', memorySwap: '32m' }, twoCpus), hutchCode('BAD_FLAG'));
    assert.throws(
      () => buildResources({ memorySwap: '1g' }, twoCpus),
      hutchCode('BAD_FLAG', /--memory-swap/),
    );
    assert.throws(() => buildResources({ memory: '4m' }, twoCpus), hutchCode('BAD_FLAG', /6m/));
  });
  it('treats 0 as no limit', () => {
    assert.deepEqual(buildResources({ memory: 0, memorySwap: '0' }, twoCpus).resources, {});
  });
  it('sets a reservation no larger than the limit', () => {
    assert.deepEqual(buildResources({ memoryReservation: '32m' }, twoCpus).resources, {
      memory: { reservation: 32 * MiB },
    });
    assert.throws(
      () => buildResources({ memory: '64m', memoryReservation: '128m' }, twoCpus),
      hutchCode('BAD_FLAG', /--memory-reservation/),
    );
  });
});

describe('buildResources: CPU and processes', () => {
  it('turns --cpus into a quota over a 100ms period', () => {
    const r = buildResources({ cpus: '1.5' }, twoCpus);
    assert.deepEqual(r.resources.cpu, { quota: 150000, period: 100000 });
    assert.deepEqual([...r.needs], ['cpu']);
  });
  it('refuses more CPUs than the host has, and --cpus with a quota', () => {
    assert.throws(() => buildResources({ cpus: '3' }, twoCpus), hutchCode('BAD_FLAG', /0\.01 to 2/));
    assert.throws(() => buildResources({ cpus: 'many' }, twoCpus), hutchCode('BAD_FLAG'));
    assert.throws(
      () => buildResources({ cpus: 1, cpuPeriod: 50000 }, twoCpus),
      hutchCode('BAD_FLAG', /--cpus/),
    );
  });
  it('checks shares, quota and period ranges', () => {
    const r = buildResources({ cpuShares: '512', cpuQuota: 50000, cpuPeriod: '200000' }, twoCpus);
    assert.deepEqual(r.resources.cpu, { shares: 512, quota: 50000, period: 200000 });
    assert.throws(() => buildResources({ cpuQuota: 500 }, twoCpus), hutchCode('BAD_FLAG', /1000/));
    assert.throws(() => buildResources({ cpuPeriod: 999 }, twoCpus), hutchCode('BAD_FLAG'));
    assert.throws(() => buildResources({ cpuShares: '1.5' }, twoCpus), hutchCode('BAD_FLAG'));
  });
  it('takes a cpuset of online CPUs only', () => {
    const r = buildResources({ cpusetCpus: '0-1' }, twoCpus);
    assert.deepEqual(r.resources.cpu, { cpus: '0-1' });
    assert.deepEqual([...r.needs], ['cpuset']);
    assert.throws(() => buildResources({ cpusetCpus: '1,3' }, twoCpus), hutchCode('BAD_FLAG', /CPU 3/));
    assert.throws(() => buildResources({ cpusetCpus: '1-' }, twoCpus), hutchCode('BAD_FLAG'));
  });
  it('limits processes, with 0 and -1 meaning no limit', () => {
    const r = buildResources({ pidsLimit: '100' }, twoCpus);
    assert.deepEqual(r.resources.pids, { limit: 100 });
    assert.deepEqual([...r.needs], ['pids']);
    for (const unlimited of [0, -1, '-1']) {
      const u = buildResources({ pidsLimit: unlimited }, twoCpus);
      assert.deepEqual([u.resources, u.needs.size], [{}, 0]);
    }
    assert.throws(() => buildResources({ pidsLimit: -2 }, twoCpus), hutchCode('BAD_FLAG'));
  });
  it('needs nothing when nothing is asked', () => {
    const r = buildResources({}, twoCpus);
    assert.deepEqual([r.resources, r.needs.size], [{}, 0]);
  });
});

describe('parseCpuList and deviceNumbers', () => {
  it('expands cpu lists', () => {
    assert.deepEqual(parseCpuList('0-2,5,4'), [0, 1, 2, 4, 5]);
    assert.equal(parseCpuList('2-1'), undefined);
    assert.equal(parseCpuList('a'), undefined);
  });
  it('splits dev_t as glibc does', () => {
    assert.deepEqual(deviceNumbers(0x0103n), { major: 1, minor: 3 });
    // major 259, minor 65536: the high parts of both live above bit 20.
    const dev = ((259n & 0xfffn) << 8n) | (65536n & 0xffn) | ((65536n & ~0xffn) << 12n);
    assert.deepEqual(deviceNumbers(dev), { major: 259, minor: 65536 });
    assert.deepEqual(deviceNumbers(statSync('/dev/null', { bigint: true }).rdev), { major: 1, minor: 3 });
  });
});

/** The first block device in /dev, if this machine shows one. */
function blockDevice(): string | undefined {
  for (const name of readdirSync('/dev')) {
    try {
      if (statSync(`/dev/${name}`).isBlockDevice()) return `/dev/${name}`;
    } catch {
      // Not readable: look further.
    }
  }
  return undefined;
}
const block = blockDevice();

describe('buildResources: block IO', () => {
  it('sets the weight within 10 to 1000', () => {
    const r = buildResources({ blkioWeight: 300 }, twoCpus);
    assert.deepEqual(r.resources.blockIO, { weight: 300 });
    assert.deepEqual([...r.needs], ['io']);
    assert.throws(() => buildResources({ blkioWeight: 5 }, twoCpus), hutchCode('BAD_FLAG', /10 to 1000/));
  });
  it('throttles a block device by its numbers', { skip: block ? false : 'no block device in /dev' }, () => {
    const dev = block ?? '';
    const nums = deviceNumbers(statSync(dev, { bigint: true }).rdev);
    const r = buildResources({ deviceReadBps: [`${dev}:1mb`], deviceWriteIops: [`${dev}:100`] }, twoCpus);
    assert.deepEqual(r.resources.blockIO, {
      throttleReadBpsDevice: [{ ...nums, rate: MiB }],
      throttleWriteIOPSDevice: [{ ...nums, rate: 100 }],
    });
    assert.deepEqual(r.requestedBy.get('io'), ['--device-read-bps', '--device-write-iops']);
  });
  it('refuses what is not a block device, or not DEVICE:RATE', () => {
    assert.throws(
      () => buildResources({ deviceReadBps: ['/dev/null:1mb'] }, twoCpus),
      hutchCode('BAD_FLAG', /not a block device/),
    );
    assert.throws(() => buildResources({ deviceWriteBps: ['sda:1mb'] }, twoCpus), hutchCode('BAD_FLAG'));
    assert.throws(
      () => buildResources({ deviceReadIops: ['/dev/no-such-disk:10'] }, twoCpus),
      hutchCode('BAD_FLAG', /no-such-disk/),
    );
  });
});

const V2_MOUNTINFO = '35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n';
const V1_MOUNTINFO =
  '30 24 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n' +
  '31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n' +
  '32 30 0:28 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n' +
  '33 30 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n';
const USER_CG = '/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service';

function v2Host(extra: HostSpec = {}): HostSpec {
  return {
    files: {
      '/proc/self/mountinfo': V2_MOUNTINFO,
      '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
      '/proc/self/cgroup': '0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n',
      '/proc/1/comm': 'systemd\n',
      ...extra.files,
    },
    stat: { ...extra.stat },
  };
}

describe('availableControllers', () => {
  it('as root, takes the v2 root controllers', () => {
    const a = availableControllers(false, { host: specHost(v2Host()) });
    assert.deepEqual([...a.controllers].sort(), [
      'cpu',
      'cpuset',
      'hugetlb',
      'io',
      'memory',
      'misc',
      'pids',
      'rdma',
    ]);
    assert.equal(a.reason, undefined);
  });
  it('as root on v1, takes the mounted hierarchies, blkio as io', () => {
    const a = availableControllers(false, {
      host: specHost({ files: { '/proc/self/mountinfo': V1_MOUNTINFO } }),
    });
    assert.deepEqual([...a.controllers].sort(), ['io', 'memory', 'pids']);
    assert.match(a.reason ?? '', /cpu/);
  });
  it('rootless on v1 has nothing', () => {
    const a = availableControllers(true, {
      host: specHost({ files: { '/proc/self/mountinfo': V1_MOUNTINFO } }),
      uid: 1000,
    });
    assert.equal(a.controllers.size, 0);
    assert.match(a.reason ?? '', /cannot be delegated/);
  });
  it('rootless on v2, takes what is delegated to the user', () => {
    const host = specHost(
      v2Host({
        files: { [`${USER_CG}/cgroup.controllers`]: 'cpu memory pids\n' },
        stat: { [USER_CG]: { mode: '040755', uid: 1000 } },
      }),
    );
    const a = availableControllers(true, { host, uid: 1000 });
    assert.deepEqual([...a.controllers].sort(), ['cpu', 'memory', 'pids']);
    assert.match(a.reason ?? '', /delegates memory, cpu, pids to you but not cpuset, io$/);
  });
  it('rootless on v2, has nothing when the cgroup belongs to someone else', () => {
    const host = specHost(
      v2Host({
        files: { [`${USER_CG}/cgroup.controllers`]: 'cpu memory pids\n' },
        stat: { [USER_CG]: { mode: '040755', uid: 0 } },
      }),
    );
    const a = availableControllers(true, { host, uid: 1000 });
    assert.equal(a.controllers.size, 0);
    assert.match(a.reason ?? '', /not yours/);
  });
});

describe('checkControllers', () => {
  it('passes when every controller is there', () => {
    checkControllers(new Set(['memory', 'pids']), {
      controllers: new Set(['memory', 'pids', 'cpu']),
      rootless: true,
    });
  });
  it('names the limits it cannot enforce, and why', () => {
    const built = buildResources({ memory: '64m', cpus: 1, pidsLimit: 10 }, twoCpus);
    assert.throws(
      () =>
        checkControllers(
          built.needs,
          { controllers: new Set(['pids']), rootless: true, reason: 'cgroup v1 cannot be delegated' },
          built.requestedBy,
        ),
      (e: unknown) => {
        hutchCode('LIMITS_UNAVAILABLE')(e);
        const err = e as Error & { hint?: string };
        assert.match(err.message, /--memory \(memory controller\)/);
        assert.match(err.message, /--cpus \(cpu controller\)/);
        assert.doesNotMatch(err.message, /pids/);
        assert.match(err.message, /cgroup v1 cannot be delegated/);
        assert.match(err.hint ?? '', /hutch doctor/);
        assert.match(err.hint ?? '', /hutch setup --user/);
        return true;
      },
    );
  });
  it('tells root to look at the host, not at delegation', () => {
    assert.throws(
      () => checkControllers(new Set(['io']), { controllers: new Set(), rootless: false }),
      (e: unknown) =>
        hutchCode('LIMITS_UNAVAILABLE', /the io controller/)(e) &&
        !/setup --user/.test((e as { hint?: string }).hint ?? ''),
    );
  });
});

const LIMITS = [
  'Limit                     Soft Limit           Hard Limit           Units     ',
  'Max core file size        0                    unlimited            bytes     ',
  'Max processes             4096                 8192                 processes ',
  'Max open files            1024                 524288               files     ',
  'Max nice priority         0                    0                    ',
  '',
].join('\n');
const limitsHost = specHost({ files: { '/proc/self/limits': LIMITS } });

describe('parseUlimit', () => {
  it('reads soft and hard, a single value for both', () => {
    assert.deepEqual(parseUlimit('nofile=1024:2048', { rootless: false, host: limitsHost }), {
      type: 'RLIMIT_NOFILE',
      soft: 1024,
      hard: 2048,
    });
    assert.deepEqual(parseUlimit('nproc=100', { rootless: true, host: limitsHost }), {
      type: 'RLIMIT_NPROC',
      soft: 100,
      hard: 100,
    });
  });
  it('makes -1 the current hard limit', () => {
    assert.deepEqual(parseUlimit('nofile=-1', { rootless: true, host: limitsHost }), {
      type: 'RLIMIT_NOFILE',
      soft: 524288,
      hard: 524288,
    });
    assert.deepEqual(parseUlimit('nproc=-1:4096', { rootless: true, host: limitsHost }), {
      type: 'RLIMIT_NPROC',
      soft: 4096,
      hard: 4096,
    });
    assert.deepEqual(parseUlimit('core=-1', { rootless: true, host: limitsHost }), {
      type: 'RLIMIT_CORE',
      soft: UNLIMITED_STANDIN,
      hard: UNLIMITED_STANDIN,
    });
  });
  it('refuses a rootless hard limit above the current one, saying the maximum', () => {
    assert.throws(
      () => parseUlimit('nofile=1024:1048576', { rootless: true, host: limitsHost }),
      hutchCode('ULIMIT_TOO_HIGH', /at most 524288/),
    );
    assert.equal(parseUlimit('nofile=1048576', { rootless: false, host: limitsHost }).hard, 1048576);
  });
  it('refuses unknown names and bad values', () => {
    for (const bad of [
      'nofiles=10',
      'nofile',
      'nofile=a',
      'nofile=10:5',
      'nofile=-2',
      'as=10',
      'nofile=1:2:3',
    ])
      assert.throws(
        () => parseUlimit(bad, { rootless: false, host: limitsHost }),
        hutchCode('BAD_ULIMIT'),
        bad,
      );
  });
});

describe('parseDevice', () => {
  it('maps a device node with its numbers and default permissions', () => {
    const [m, ...rest] = parseDevice('/dev/null');
    assert.equal(rest.length, 0);
    assert.deepEqual(m?.allow, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' });
    assert.equal(m?.device.path, '/dev/null');
    assert.equal(m?.device.type, 'c');
    assert.equal(m?.device.fileMode, statSync('/dev/null').mode & 0o7777);
  });
  it('takes a container path and permissions', () => {
    const [a] = parseDevice('/dev/null:/dev/mynull:wr');
    assert.equal(a?.device.path, '/dev/mynull');
    assert.equal(a?.allow.access, 'rw');
    const [b] = parseDevice('/dev/null:r');
    assert.equal(b?.device.path, '/dev/null');
    assert.equal(b?.allow.access, 'r');
  });
  it('refuses missing paths, non-devices and bad syntax', () => {
    assert.throws(() => parseDevice('/dev/no-such-device'), hutchCode('BAD_DEVICE', /does not exist/));
    assert.throws(() => parseDevice('/etc/hostname'), hutchCode('BAD_DEVICE', /not a device/));
    assert.throws(() => parseDevice('dev/null'), hutchCode('BAD_DEVICE'));
    assert.throws(() => parseDevice('/dev/null:/x:rwx'), hutchCode('BAD_DEVICE'));
    assert.throws(() => parseDevice('/dev/null:rel'), hutchCode('BAD_DEVICE'));
  });
  it(
    'maps every device under a directory',
    { skip: existsSync('/dev/net/tun') ? false : 'no /dev/net/tun' },
    () => {
      const m = parseDevice('/dev/net:/dev/vnet');
      const tun = m.find((d) => d.device.path === '/dev/vnet/tun');
      assert.ok(tun, JSON.stringify(m));
      assert.deepEqual(
        [tun.device.major, tun.device.minor],
        Object.values(deviceNumbers(statSync('/dev/net/tun', { bigint: true }).rdev)),
      );
    },
  );
});

describe('parseSysctls', () => {
  const own = { hostNetwork: false, hostIpc: false, hostUts: false };
  it('accepts namespaced sysctls', () => {
    assert.deepEqual(
      parseSysctls(
        [
          'net.ipv4.ip_forward=1',
          'kernel.shmmax=1000',
          'fs.mqueue.msg_max=20',
          'kernel.domainname=x',
          'kernel.sem=1 2 3 4',
        ],
        own,
      ),
      {
        'net.ipv4.ip_forward': '1',
        'kernel.shmmax': '1000',
        'fs.mqueue.msg_max': '20',
        'kernel.domainname': 'x',
        'kernel.sem': '1 2 3 4',
      },
    );
  });
  it('refuses sysctls that are not namespaced', () => {
    for (const s of ['vm.swappiness=10', 'kernel.pid_max=100', 'fs.file-max=10'])
      assert.throws(() => parseSysctls([s], own), hutchCode('BAD_SYSCTL', /not namespaced/), s);
  });
  it('refuses sysctls of namespaces shared with the host', () => {
    assert.throws(
      () => parseSysctls(['net.core.somaxconn=1'], { ...own, hostNetwork: true }),
      hutchCode('BAD_SYSCTL'),
    );
    assert.throws(
      () => parseSysctls(['kernel.msgmax=1'], { ...own, hostIpc: true }),
      hutchCode('BAD_SYSCTL'),
    );
    assert.throws(
      () => parseSysctls(['kernel.hostname=a'], { ...own, hostUts: true }),
      hutchCode('BAD_SYSCTL'),
    );
    assert.deepEqual(parseSysctls(['kernel.msgmax=1'], { ...own, hostNetwork: true }), {
      'kernel.msgmax': '1',
    });
  });
  it('refuses entries without a value', () => {
    assert.throws(() => parseSysctls(['net.ipv4.ip_forward'], own), hutchCode('BAD_SYSCTL'));
    assert.throws(() => parseSysctls(['net.ipv4.ip_forward='], own), hutchCode('BAD_SYSCTL'));
  });
});

describe('parseShmSize', () => {
  it('defaults to 64m', () => {
    assert.equal(DEFAULT_SHM_SIZE, 64 * MiB);
    assert.equal(parseShmSize(undefined), 64 * MiB);
    assert.equal(parseShmSize('0'), 64 * MiB);
  });
  it('parses sizes', () => {
    assert.equal(parseShmSize('1g'), 1024 * MiB);
    assert.throws(() => parseShmSize('lots'), hutchCode('BAD_FLAG', /--shm-size/));
  });
});
