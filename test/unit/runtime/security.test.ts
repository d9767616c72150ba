import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  allCapabilities,
  DEFAULT_CAPABILITIES,
  DEFAULT_SECCOMP_FILE,
  KNOWN_CAPABILITIES,
  MASKED_PATHS,
  parseSecurityOpts,
  pathRestrictions,
  READONLY_PATHS,
  resolveCapabilities,
  seccompProfile,
} from '../../../src/runtime/security.ts';
import type { OciSeccomp } from '../../../src/runtime/security.ts';

function hutchCode(code: string): (e: unknown) => boolean {
  return (e) => {
    assert.equal((e as { code?: string }).code, code, String(e));
    return true;
  };
}

describe('capabilities', () => {
  it('knows the kernel capabilities in kernel order', () => {
    assert.equal(KNOWN_CAPABILITIES.length, 41);
    assert.equal(KNOWN_CAPABILITIES[21], 'CAP_SYS_ADMIN');
    assert.equal(KNOWN_CAPABILITIES[40], 'CAP_CHECKPOINT_RESTORE');
  });
  it('bounds ALL by the last capability of the kernel', () => {
    assert.equal(allCapabilities(37).length, 38);
    assert.equal(allCapabilities(37).at(-1), 'CAP_AUDIT_READ');
    assert.equal(allCapabilities(40).length, 41);
  });
  it('gives root the default set in all of bounding, effective and permitted', () => {
    const c = resolveCapabilities({ uid: 0, lastCap: 40 });
    assert.deepEqual(new Set(c.bounding), new Set(DEFAULT_CAPABILITIES));
    assert.deepEqual(c.effective, c.bounding);
    assert.deepEqual(c.permitted, c.bounding);
    assert.deepEqual(c.inheritable, []);
    assert.deepEqual(c.ambient, []);
  });
  it('accepts names with or without CAP_ and in any case', () => {
    for (const name of ['NET_ADMIN', 'CAP_NET_ADMIN', 'net_admin', 'Cap_Net_Admin']) {
      const c = resolveCapabilities({ uid: 0, capAdd: [name], lastCap: 40 });
      assert.ok(c.bounding.includes('CAP_NET_ADMIN'), name);
      assert.equal(c.bounding.length, DEFAULT_CAPABILITIES.length + 1);
    }
  });
  it('applies drops after adds', () => {
    const c = resolveCapabilities({
      uid: 0,
      capAdd: ['NET_ADMIN'],
      capDrop: ['net_admin', 'CHOWN'],
      lastCap: 40,
    });
    assert.ok(!c.bounding.includes('CAP_NET_ADMIN'));
    assert.ok(!c.bounding.includes('CAP_CHOWN'));
    assert.ok(c.bounding.includes('CAP_KILL'));
  });
  it('keeps only the added ones after --cap-drop ALL', () => {
    const c = resolveCapabilities({ uid: 0, capAdd: ['NET_RAW', 'CHOWN'], capDrop: ['ALL'], lastCap: 40 });
    assert.deepEqual(c.bounding, ['CAP_CHOWN', 'CAP_NET_RAW']);
  });
  it('--cap-add ALL gives every capability but the dropped', () => {
    const c = resolveCapabilities({ uid: 0, capAdd: ['all'], capDrop: ['SYS_ADMIN'], lastCap: 40 });
    assert.equal(c.bounding.length, 40);
    assert.ok(!c.bounding.includes('CAP_SYS_ADMIN'));
  });
  it('--privileged gives every capability the kernel knows', () => {
    const c = resolveCapabilities({ uid: 0, privileged: true, lastCap: 39 });
    assert.deepEqual(c.bounding, KNOWN_CAPABILITIES.slice(0, 40));
  });
  it('a non-root process keeps only the bounding set', () => {
    const c = resolveCapabilities({ uid: 1000, capAdd: ['NET_ADMIN'], lastCap: 40 });
    assert.ok(c.bounding.includes('CAP_NET_ADMIN'));
    assert.deepEqual([c.effective, c.permitted, c.inheritable, c.ambient], [[], [], [], []]);
  });
  it('refuses unknown names, and names the running kernel lacks', () => {
    assert.throws(
      () => resolveCapabilities({ uid: 0, capAdd: ['NET_FROB'], lastCap: 40 }),
      (e: unknown) => hutchCode('BAD_CAPABILITY')(e) && /NET_FROB/.test((e as Error).message),
    );
    assert.throws(
      () => resolveCapabilities({ uid: 0, capDrop: ['BPF'], lastCap: 37 }),
      (e: unknown) => hutchCode('BAD_CAPABILITY')(e) && /CAP_BPF/.test((e as Error).message),
    );
  });
});

describe('masked and read-only paths', () => {
  it('has the defaults of docker', () => {
    for (const p of ['/proc/kcore', '/proc/keys', '/sys/firmware', '/proc/interrupts'])
      assert.ok(MASKED_PATHS.includes(p), p);
    assert.ok(READONLY_PATHS.includes('/proc/sys'));
    assert.ok(READONLY_PATHS.includes('/proc/sysrq-trigger'));
  });
  it('gives --privileged none', () => {
    assert.deepEqual(pathRestrictions({ privileged: true }), { maskedPaths: [], readonlyPaths: [] });
  });
  it('unmasks paths, globs and ALL, and adds masks', () => {
    const r = pathRestrictions({ unmask: ['/proc/kcore', '/sys/*'], mask: ['/proc/cpuinfo'] });
    assert.ok(!r.maskedPaths.includes('/proc/kcore'));
    assert.ok(!r.maskedPaths.includes('/sys/firmware'));
    assert.ok(r.maskedPaths.includes('/sys/fs/selinux'), 'a glob matches one path component');
    assert.ok(r.maskedPaths.includes('/proc/keys'));
    assert.ok(r.maskedPaths.includes('/proc/cpuinfo'));
    const all = pathRestrictions({ unmask: ['ALL'] });
    assert.deepEqual(all, { maskedPaths: [], readonlyPaths: [] });
  });
});

describe(
  'seccompProfile with the containers-common profile',
  { skip: !existsSync(DEFAULT_SECCOMP_FILE) },
  () => {
    const base = { mode: 'default' as const, arch: 'x64', kernelRelease: '6.1.0' };
    const rulesFor = (p: OciSeccomp | undefined, name: string) =>
      (p?.syscalls ?? []).filter((r) => r.names.includes(name));

    it('keeps the default action and errno', () => {
      const p = seccompProfile({ ...base, capabilities: DEFAULT_CAPABILITIES });
      assert.equal(p?.defaultAction, 'SCMP_ACT_ERRNO');
      assert.equal(p?.defaultErrnoRet, 38);
    });
    it('takes the architectures from archMap', () => {
      assert.deepEqual(seccompProfile({ ...base, capabilities: [] })?.architectures, [
        'SCMP_ARCH_X86_64',
        'SCMP_ARCH_X86',
        'SCMP_ARCH_X32',
      ]);
      assert.deepEqual(seccompProfile({ ...base, arch: 'arm64', capabilities: [] })?.architectures, [
        'SCMP_ARCH_AARCH64',
        'SCMP_ARCH_ARM',
      ]);
    });
    it('follows CAP_SYS_PTRACE for the ptrace-like syscalls', () => {
      const without = rulesFor(seccompProfile({ ...base, capabilities: DEFAULT_CAPABILITIES }), 'kcmp');
      assert.deepEqual(
        without.map((r) => [r.action, r.errnoRet]),
        [['SCMP_ACT_ERRNO', 1]],
      );
      const withCap = rulesFor(
        seccompProfile({ ...base, capabilities: [...DEFAULT_CAPABILITIES, 'CAP_SYS_PTRACE'] }),
        'kcmp',
      );
      assert.deepEqual(
        withCap.map((r) => r.action),
        ['SCMP_ACT_ALLOW'],
      );
    });
    it('allows chroot with CAP_SYS_CHROOT and refuses it without', () => {
      const allowed = rulesFor(seccompProfile({ ...base, capabilities: DEFAULT_CAPABILITIES }), 'chroot');
      assert.deepEqual(
        allowed.map((r) => r.action),
        ['SCMP_ACT_ALLOW'],
      );
      const refused = rulesFor(seccompProfile({ ...base, capabilities: ['CAP_CHOWN'] }), 'chroot');
      assert.deepEqual(
        refused.map((r) => r.action),
        ['SCMP_ACT_ERRNO'],
      );
    });
    it('keeps the argument rules of personality', () => {
      const rules = rulesFor(seccompProfile({ ...base, capabilities: DEFAULT_CAPABILITIES }), 'personality');
      assert.equal(rules.length, 5);
      assert.deepEqual(rules[0]?.args, [{ index: 0, value: 0, valueTwo: 0, op: 'SCMP_CMP_EQ' }]);
      assert.ok(rules.some((r) => r.args?.[0]?.value === 4294967295));
    });
    it('keeps only the rules of the host architecture', () => {
      const x64 = seccompProfile({ ...base, capabilities: [] });
      assert.equal(rulesFor(x64, 'arch_prctl').length, 1);
      assert.equal(rulesFor(x64, 'arm_fadvise64_64').length, 0);
      const arm = seccompProfile({ ...base, arch: 'arm64', capabilities: [] });
      assert.equal(rulesFor(arm, 'arch_prctl').length, 0);
      assert.equal(rulesFor(arm, 'arm_fadvise64_64').length, 1);
    });
    it('drops the docker-only fields', () => {
      for (const r of seccompProfile({ ...base, capabilities: [] })?.syscalls ?? []) {
        assert.deepEqual(
          Object.keys(r).filter((k) => !['names', 'action', 'errnoRet', 'args'].includes(k)),
          [],
        );
      }
    });
    it('is undefined when unconfined', () => {
      assert.equal(seccompProfile({ mode: 'unconfined', capabilities: [] }), undefined);
    });
  },
);

describe('seccompProfile with other files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hutch-seccomp-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: unknown): string => {
    const p = join(dir, name);
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
    return p;
  };

  it('passes an OCI-form profile through', () => {
    const oci = {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        { names: ['socket'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 40, op: 'SCMP_CMP_EQ' }] },
      ],
    };
    const p = seccompProfile({ mode: { file: file('oci.json', oci) }, capabilities: [], arch: 'arm64' });
    assert.deepEqual(p, oci);
  });
  it('applies minKernel against the running kernel', () => {
    const f = file('minkernel.json', {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
      ],
    });
    const names = (release: string) =>
      seccompProfile({ mode: { file: f }, capabilities: [], kernelRelease: release })?.syscalls?.flatMap(
        (r) => r.names,
      );
    assert.deepEqual(names('4.4.0-21-generic'), ['read']);
    assert.deepEqual(names('4.8.0'), ['read', 'ptrace']);
  });
  it('rejects a file that is missing, not JSON, or of the wrong shape, naming it', () => {
    const cases = [
      join(dir, 'absent.json'),
      file('garbage.json', '{ not json'),
      file('array.json', []),
      file('action.json', { defaultAction: 'SCMP_ACT_MAYBE', syscalls: [] }),
      file('names.json', {
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [{ names: 'read', action: 'SCMP_ACT_ALLOW' }],
      }),
      file('op.json', {
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'EQ' }] }],
      }),
    ];
    for (const f of cases) {
      assert.throws(
        () => seccompProfile({ mode: { file: f }, capabilities: [] }),
        (e: unknown) => hutchCode('BAD_SECCOMP')(e) && (e as Error).message.includes(f),
        f,
      );
    }
  });
  it('falls back to a deny-list when the default profile is missing', () => {
    const mode = 'default' as const;
    const defaultFile = join(dir, 'no-such-default.json');
    const p = seccompProfile({ mode, defaultFile, capabilities: DEFAULT_CAPABILITIES, arch: 'x64' });
    assert.equal(p?.defaultAction, 'SCMP_ACT_ALLOW');
    assert.deepEqual(p?.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const denied = (q: OciSeccomp | undefined) => new Set((q?.syscalls ?? []).flatMap((r) => r.names));
    assert.ok(denied(p).has('ptrace'));
    assert.ok(denied(p).has('mount'));
    assert.ok(denied(p).has('keyctl'));
    assert.ok(p?.syscalls?.every((r) => r.action === 'SCMP_ACT_ERRNO' && r.errnoRet === 1));
    const ptracer = seccompProfile({
      mode,
      defaultFile,
      capabilities: [...DEFAULT_CAPABILITIES, 'CAP_SYS_PTRACE', 'CAP_SYS_ADMIN'],
    });
    assert.ok(!denied(ptracer).has('ptrace'));
    assert.ok(!denied(ptracer).has('mount'));
    assert.ok(denied(ptracer).has('keyctl'), 'the keyring is never namespaced');
  });
});

describe('parseSecurityOpts', () => {
  it('has safe defaults', () => {
    assert.deepEqual(parseSecurityOpts([]), {
      noNewPrivileges: false,
      seccomp: 'default',
      labelDisable: false,
      unmask: [],
      mask: [],
      ignored: [],
    });
  });
  it('reads no-new-privileges in all spellings', () => {
    for (const o of ['no-new-privileges', 'no-new-privileges=true', 'no-new-privileges:true'])
      assert.equal(parseSecurityOpts([o]).noNewPrivileges, true, o);
    assert.equal(parseSecurityOpts(['no-new-privileges', 'no-new-privileges=false']).noNewPrivileges, false);
  });
  it('reads seccomp modes, resolving a relative file', () => {
    assert.equal(parseSecurityOpts(['seccomp=unconfined']).seccomp, 'unconfined');
    assert.deepEqual(parseSecurityOpts(['seccomp=/etc/p.json']).seccomp, { file: '/etc/p.json' });
    assert.deepEqual(parseSecurityOpts(['seccomp:p.json']).seccomp, { file: resolve('p.json') });
  });
  it('disables labels and returns the options it ignores', () => {
    const o = parseSecurityOpts(['label=disable', 'label=type:spc_t', 'apparmor=unconfined']);
    assert.equal(o.labelDisable, true);
    assert.deepEqual(o.ignored, ['label=type:spc_t', 'apparmor=unconfined']);
  });
  it('collects mask and unmask paths', () => {
    const o = parseSecurityOpts(['unmask=/proc/kcore:/proc/keys', 'unmask=ALL', 'mask=/a:/b']);
    assert.deepEqual(o.unmask, ['/proc/kcore', '/proc/keys', 'ALL']);
    assert.deepEqual(o.mask, ['/a', '/b']);
    assert.deepEqual(parseSecurityOpts(['systempaths=unconfined']).unmask, ['ALL']);
  });
  it('refuses anything else', () => {
    for (const o of [
      'no-new-privileges=maybe',
      'seccomp=',
      'apparmor=docker-default',
      'mask=relative/path',
      'mask=ALL',
      'unmask=',
      'selinux=off',
      'privileged',
    ])
      assert.throws(() => parseSecurityOpts([o]), hutchCode('BAD_SECURITY_OPT'), o);
  });
});
