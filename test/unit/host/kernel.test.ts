import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  atLeast,
  compareVersions,
  kernelRelease,
  kernelVersion,
  parseKernelRelease,
  parseVersion,
  readSysctl,
  selinuxEnforcing,
  zfsModuleVersion,
} from '../../../src/host/kernel.ts';
import { specHost } from '../../../src/host/view.ts';
import { release } from 'node:os';

describe('kernelRelease', () => {
  it('is the release uname gives, read from /proc', () => {
    assert.equal(kernelRelease(), release());
    assert.ok(parseKernelRelease(kernelRelease()), kernelRelease());
  });
});

describe('parseKernelRelease', () => {
  const cases: Array<[string, number[] | undefined]> = [
    ['6.1.0-18-amd64', [6, 1, 0]],
    ['6.18.44-fc-v657', [6, 18, 44]],
    ['5.15.0-105-generic', [5, 15, 0]],
    ['4.18.0-513.5.1.el8_9.x86_64', [4, 18, 0]],
    ['6.8.5-301.fc40.x86_64', [6, 8, 5]],
    ['5.11', [5, 11, 0]],
    ['  6.9.1\n', [6, 9, 1]],
    ['garbage', undefined],
    ['', undefined],
  ];
  for (const [text, want] of cases) {
    it(`"${text.trim()}"`, () => assert.deepEqual(parseKernelRelease(text), want));
  }
});

describe('parseVersion / compareVersions', () => {
  it('takes the leading dotted number', () => {
    assert.deepEqual(parseVersion('2.2.2-0ubuntu9'), [2, 2, 2]);
    assert.deepEqual(parseVersion('2.1.5-1ubuntu6~22.04.4'), [2, 1, 5]);
    assert.deepEqual(parseVersion('v6.2'), [6, 2]);
    assert.equal(parseVersion('none'), undefined);
  });
  const cmp: Array<[number[], number[], number]> = [
    [[5, 11], [5, 11, 0], 0],
    [[5, 10, 99], [5, 11], -1],
    [[6, 0], [5, 13], 1],
    [[5, 13, 1], [5, 13], 1],
    [[2, 1, 11], [2, 2], -1],
  ];
  for (const [a, b, sign] of cmp) {
    it(`${a.join('.')} vs ${b.join('.')}`, () => assert.equal(Math.sign(compareVersions(a, b)), sign));
  }
  it('atLeast', () => {
    assert.equal(atLeast([5, 11, 0], [5, 11]), true);
    assert.equal(atLeast([5, 10, 200], [5, 11]), false);
  });
});

describe('host kernel facts', () => {
  const host = specHost({
    files: {
      '/proc/sys/user/max_user_namespaces': '63230\n',
      '/proc/sys/net/ipv4/ip_unprivileged_port_start': '1024\n',
      '/proc/sys/kernel/bad': 'x\n',
      '/sys/fs/selinux/enforce': '1',
      '/sys/module/zfs/version': '2.2.2-0ubuntu9\n',
    },
    kernelRelease: '6.8.0-31-generic',
  });
  it('reads sysctls through /proc/sys', () => {
    assert.equal(readSysctl(host, 'user.max_user_namespaces'), 63230);
    assert.equal(readSysctl(host, 'net.ipv4.ip_unprivileged_port_start'), 1024);
    assert.equal(readSysctl(host, 'kernel.unprivileged_userns_clone'), undefined);
    assert.equal(readSysctl(host, 'kernel.bad'), undefined);
  });
  it('reads SELinux, ZFS and the kernel version', () => {
    assert.equal(selinuxEnforcing(host), true);
    assert.equal(selinuxEnforcing(specHost({})), false);
    assert.equal(zfsModuleVersion(host), '2.2.2-0ubuntu9');
    assert.equal(zfsModuleVersion(specHost({})), undefined);
    assert.deepEqual(kernelVersion(host), [6, 8, 0]);
  });
});
