/**
 * What a rootless user needs from systemd, where systemd is the init:
 *
 * - linger, so the user's manager (and with it /run/user/UID and the
 *   user's cgroup) exists without a login, and containers with restart
 *   policies come back after a reboot;
 * - on cgroup v2, the cpu, cpuset, io, memory and pids controllers delegated
 *   to the user's manager (a `user@.service` drop-in), so --memory, --cpus,
 *   --pids-limit and --device-write-bps are enforced rootless.
 *
 * Without systemd neither applies: the runtime-directory step and the boot
 * script cover /run/user/UID, and cgroup-subtree.ts delegates on cgroup v2.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../../util/errors.ts';
import { readIfExists, writeFileAtomic } from '../../util/fs-atomic.ts';
import { detectInit } from './init.ts';
import type { SetupStep, SetupTarget } from './types.ts';
import { previousContent } from './undo.ts';

export const DELEGATED = ['cpu', 'cpuset', 'io', 'memory', 'pids'];
const DROP_IN_DIR = 'etc/systemd/system/user@.service.d';
export const DROP_IN = `${DROP_IN_DIR}/hutch-delegate.conf`;

/** systemd is the init: found running (sd_booted's /run/systemd/system, PID 1) or chosen with --init. */
export function hasSystemd(t: SetupTarget): boolean {
  return detectInit(t).name === 'systemd';
}

function cgroupV2(t: SetupTarget): boolean {
  return existsSync(join(t.hostRoot, 'sys/fs/cgroup/cgroup.controllers'));
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new HutchError(
      'SETUP',
      `${cmd} ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`,
    );
  }
}

export function systemdSteps(t: SetupTarget): SetupStep[] {
  if (!hasSystemd(t)) {
    return [
      {
        id: 'systemd',
        title: 'linger and cgroup delegation',
        status: 'ok',
        detail: 'systemd is not the init here: nothing to enable (the runtime directory is made above)',
      },
    ];
  }
  return [lingerStep(t), ...(cgroupV2(t) ? [delegationStep(t)] : [])];
}

function lingerStep(t: SetupTarget): SetupStep {
  const file = join(t.hostRoot, 'var/lib/systemd/linger', t.user.name);
  if (existsSync(file)) {
    return {
      id: 'linger',
      title: 'linger',
      status: 'ok',
      detail: `${t.user.name}'s manager runs without a login`,
    };
  }
  return {
    id: 'linger',
    title: 'linger',
    status: 'change',
    detail: `let ${t.user.name}'s systemd manager run without a login (containers outlive logouts and restart after a reboot)`,
    diff: [t.live ? `loginctl enable-linger ${t.user.name}` : `+ ${file}`],
    undo: [t.live ? { kind: 'linger', user: t.user.name } : { kind: 'file', path: file, previous: null }],
    apply: () => {
      if (t.live) return run('loginctl', ['enable-linger', t.user.name]);
      // What enable-linger records; on the real host loginctl also starts the manager at once.
      mkdirSync(join(t.hostRoot, 'var/lib/systemd/linger'), { recursive: true });
      writeFileSync(file, '');
    },
  };
}

/** Controllers a drop-in in user@.service.d already delegates ("yes" delegates them all). */
function delegatedAlready(t: SetupTarget): Set<string> {
  const dir = join(t.hostRoot, DROP_IN_DIR);
  const have = new Set<string>();
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.conf'));
  } catch {
    return have;
  }
  for (const f of files) {
    for (const m of (readIfExists(join(dir, f)) ?? '').matchAll(/^\s*Delegate\s*=\s*(.*)$/gm)) {
      const v = m[1]!.trim();
      if (/^(yes|true|1|on)$/i.test(v)) DELEGATED.forEach((c) => have.add(c));
      else v.split(/\s+/).forEach((c) => have.add(c));
    }
  }
  return have;
}

function delegationStep(t: SetupTarget): SetupStep {
  const have = delegatedAlready(t);
  const missing = DELEGATED.filter((c) => !have.has(c));
  if (missing.length === 0) {
    return {
      id: 'cgroup:delegate',
      title: 'cgroup delegation',
      status: 'ok',
      detail: `${DELEGATED.join(', ')} are delegated to users' managers`,
    };
  }
  const file = join(t.hostRoot, DROP_IN);
  const text = `# hutch setup: resource limits for rootless containers\n[Service]\nDelegate=${DELEGATED.join(' ')}\n`;
  return {
    id: 'cgroup:delegate',
    title: 'cgroup delegation',
    status: 'change',
    detail: `delegate ${missing.join(', ')} to users' systemd managers, so limits are enforced rootless (takes effect at the user's next login or linger start)`,
    diff: [
      ...text
        .trim()
        .split('\n')
        .map((l) => `${file}: +${l}`),
      ...(t.live ? ['systemctl daemon-reload'] : []),
    ],
    undo: [{ kind: 'file', path: file, previous: previousContent(file) }],
    apply: () => {
      mkdirSync(join(t.hostRoot, DROP_IN_DIR), { recursive: true });
      writeFileAtomic(file, text, 0o644);
      if (t.live) run('systemctl', ['daemon-reload']);
    },
  };
}

/**
 * --unprivileged-port-start N: lets users publish ports from N up (docker
 * rootless users ask for 80 and 443), now and after reboots (sysctl.d).
 */
export function portStartSteps(t: SetupTarget, start: number | undefined): SetupStep[] {
  if (start === undefined) return [];
  const file = join(t.hostRoot, 'etc/sysctl.d/50-hutch-unprivileged-ports.conf');
  const want = `# hutch setup: users may bind ports from ${start} up\nnet.ipv4.ip_unprivileged_port_start = ${start}\n`;
  const live = t.live ? readIfExists('/proc/sys/net/ipv4/ip_unprivileged_port_start')?.trim() : String(start);
  if (readIfExists(file) === want && live === String(start)) {
    return [
      {
        id: 'ports',
        title: 'unprivileged ports',
        status: 'ok',
        detail: `users may bind ports from ${start} up`,
      },
    ];
  }
  return [
    {
      id: 'ports',
      title: 'unprivileged ports',
      status: 'change',
      detail: `let users bind ports from ${start} up (net.ipv4.ip_unprivileged_port_start)`,
      diff: [`${file}: +net.ipv4.ip_unprivileged_port_start = ${start}`],
      undo: [
        { kind: 'file', path: file, previous: previousContent(file) },
        ...(t.live && live !== undefined
          ? [
              {
                kind: 'sysctl' as const,
                path: '/proc/sys/net/ipv4/ip_unprivileged_port_start',
                previous: `${live}\n`,
              },
            ]
          : []),
      ],
      apply: () => {
        mkdirSync(join(t.hostRoot, 'etc/sysctl.d'), { recursive: true });
        writeFileAtomic(file, want, 0o644);
        if (t.live) writeFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', `${start}\n`);
      },
    },
  ];
}
