/** cgroup layout, controller delegation, and the user's session (linger, boot service, runtime directory). */
import {
  crunRefusesHybrid,
  delegatedSubtree,
  hybridFixCommands,
  userDelegation,
} from '../../host/cgroups.ts';
import type { CgroupLayout } from '../../host/cgroups.ts';
import { parsePasswd } from '../../host/passwd.ts';
import { runtimeDirState } from '../../host/runtime-dir.ts';
import { lingerEnabled, pid1Name } from '../../host/systemd.ts';
import { USER_UNIT, bootScriptPath } from '../setup/names.ts';
import type { Facts } from './facts.ts';
import type { Check, DoctorContext } from './types.ts';
import { sudo } from './types.ts';

/** The controllers container limits need, and the flags each one serves. */
export const LIMIT_CONTROLLERS: ReadonlyArray<[string, string]> = [
  ['memory', '--memory/--memory-swap'],
  ['pids', '--pids-limit'],
  ['cpu', '--cpus/--cpu-shares'],
  ['io', '--blkio-weight/--device-read-bps'],
];

const ALL_LIMIT_FLAGS = LIMIT_CONTROLLERS.map(([, f]) => f).join(', ');

export const HYBRID_MESSAGE = 'cgroups in hybrid mode not supported, drop all controllers from cgroupv2';

function describeLayout(l: CgroupLayout): string {
  const v1 = [...new Set(l.v1.flatMap((h) => h.controllers))].join(', ');
  switch (l.mode) {
    case 'v2':
      return `cgroup v2 (unified hierarchy at ${l.v2Mount}), controllers: ${l.v2Controllers.join(', ') || 'none'}`;
    case 'v1':
      return `cgroup v1 (legacy hierarchies), controllers: ${v1 || 'none'}`;
    case 'hybrid':
      return `hybrid: cgroup v1 controllers (${v1}) plus a cgroup v2 hierarchy at ${l.v2Mount}`;
    default:
      return 'no cgroup filesystem is mounted';
  }
}

function delegateFix(ctx: DoctorContext): string {
  const s = sudo(ctx);
  return [
    `${s}mkdir -p /etc/systemd/system/user@.service.d`,
    `printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | ${s}tee /etc/systemd/system/user@.service.d/delegate.conf`,
    `${s}systemctl daemon-reload`,
    `# then log out and in again (or: ${s}systemctl restart user@${ctx.user.uid}.service)`,
  ].join('\n');
}

function unifiedFix(ctx: DoctorContext, facts: Facts): string {
  const s = sudo(ctx);
  const arg = 'systemd.unified_cgroup_hierarchy=1';
  if (!facts.systemd())
    return `# boot with cgroup v2: mount -t cgroup2 cgroup2 /sys/fs/cgroup in place of the v1 hierarchies (your init system's configuration)`;
  if (facts.distro().family === 'fedora') return `${s}grubby --update-kernel=ALL --args=${arg} && ${s}reboot`;
  const update =
    facts.distro().family === 'debian' ? `${s}update-grub` : `${s}grub2-mkconfig -o /boot/grub2/grub.cfg`;
  return `${s}sed -i 's/^GRUB_CMDLINE_LINUX="/&${arg} /' /etc/default/grub && ${update} && ${s}reboot`;
}

export function cgroupChecks(ctx: DoctorContext, facts: Facts): Check[] {
  const l = facts.layout();
  const topic = 'cgroups';
  const checks: Check[] = [
    {
      id: 'cgroup.version',
      topic,
      title: 'cgroup layout',
      status: l.mode === 'none' ? 'WARN' : 'INFO',
      reason: describeLayout(l),
      ...(l.mode === 'none' ? { fix: `${sudo(ctx)}mount -t cgroup2 cgroup2 /sys/fs/cgroup` } : {}),
    },
  ];
  if (l.mode === 'hybrid') {
    if (!crunRefusesHybrid(l)) {
      checks.push({
        id: 'cgroup.hybrid',
        topic,
        title: 'Hybrid cgroups',
        status: 'PASS',
        reason: `the cgroup v2 hierarchy at ${l.v2Mount} holds no controllers, so crun accepts this layout`,
      });
    } else {
      const runc = facts.tool('runc').path !== undefined;
      const s = sudo(ctx);
      const fix = hybridFixCommands(l, s).join('\n');
      checks.push({
        id: 'cgroup.hybrid',
        topic,
        title: 'Hybrid cgroups',
        status: runc ? 'WARN' : 'FAIL',
        reason:
          `the cgroup v2 hierarchy at ${l.v2Mount} holds ${l.v2Controllers.join(', ')}, so crun refuses to run ("${HYBRID_MESSAGE}"); ` +
          (runc
            ? 'hutch falls back to runc here. Mounting the controller as a v1 hierarchy empties cgroup v2 (until reboot)'
            : 'runc, which accepts it, is not installed. Mount the controller as a v1 hierarchy (until reboot), or install runc'),
        fix: ctx.rootless ? `${fix}\n# or: ${s}hutch setup --user ${ctx.user.name}` : fix,
      });
    }
  }
  if (!ctx.rootless) {
    checks.push(rootfulControllers(l));
    return checks;
  }
  checks.push(delegationCheck(ctx, facts, l));
  return checks;
}

function rootfulControllers(l: CgroupLayout): Check {
  const have = new Set(l.mode === 'v2' ? l.v2Controllers : l.v1.flatMap((h) => h.controllers));
  // v1 names the io controller blkio.
  const name = (c: string): string => (c === 'io' && l.mode !== 'v2' ? 'blkio' : c);
  const missing = LIMIT_CONTROLLERS.filter(([c]) => !have.has(name(c)));
  return missing.length === 0
    ? {
        id: 'cgroup.controllers',
        topic: 'cgroups',
        title: 'cgroup controllers',
        status: 'PASS',
        reason: `${LIMIT_CONTROLLERS.map(([c]) => name(c)).join(', ')} are available: ${ALL_LIMIT_FLAGS} work`,
      }
    : {
        id: 'cgroup.controllers',
        topic: 'cgroups',
        title: 'cgroup controllers',
        status: 'WARN',
        reason: `${missing.map(([c]) => name(c)).join(', ')} not available: ${missing.map(([, f]) => f).join(', ')} are refused with an error`,
      };
}

function delegationCheck(ctx: DoctorContext, facts: Facts, l: CgroupLayout): Check {
  const base = { id: 'cgroup.delegation', topic: 'cgroups', title: 'cgroup delegation' } as const;
  if (l.mode !== 'v2') {
    return {
      ...base,
      status: 'WARN',
      reason: `${l.mode === 'none' ? 'no cgroup hierarchy is mounted' : l.mode === 'hybrid' ? 'hybrid cgroups (v1 controllers) cannot be delegated to an unprivileged user' : 'cgroup v1 cannot be delegated to an unprivileged user'}: rootless containers run without resource limits, and ${ALL_LIMIT_FLAGS} are refused with an error. Switching the host to cgroup v2 fixes it`,
      fix: unifiedFix(ctx, facts),
    };
  }
  const systemd = facts.systemd();
  const d = userDelegation(ctx.host, l, ctx.user.uid, systemd);
  const refused = (cs: ReadonlyArray<[string, string]>): string => cs.map(([, f]) => f).join(', ');
  if (!d) {
    return {
      ...base,
      status: 'WARN',
      reason: `cannot find your cgroup in /proc/self/cgroup: ${ALL_LIMIT_FLAGS} are refused with an error`,
    };
  }
  if (!d.exists) {
    return {
      ...base,
      status: 'WARN',
      reason: `${d.path} does not exist: systemd's user manager for uid ${ctx.user.uid} is not running (no login session and no linger), so nothing is delegated and ${ALL_LIMIT_FLAGS} are refused with an error`,
      fix: `${sudo(ctx)}loginctl enable-linger ${ctx.user.name}`,
    };
  }
  if (!d.writable) {
    if (systemd) {
      return {
        ...base,
        status: 'WARN',
        reason: `${d.path} is not writable by you: no controller is delegated, so ${ALL_LIMIT_FLAGS} are refused with an error`,
        fix: delegateFix(ctx),
      };
    }
    const subtree = `${l.v2Mount ?? '/sys/fs/cgroup'}${delegatedSubtree(ctx.user.uid)}`;
    if (ctx.host.stat(subtree)?.isDir) {
      return {
        ...base,
        status: 'WARN',
        reason: `hutch setup delegated ${subtree} to you, but this session runs outside it (in ${d.path}), and a process may only move between cgroups below one it owns: ${ALL_LIMIT_FLAGS} are refused with an error`,
        fix: `log out and in again: the PAM session hook of hutch setup starts new logins inside ${subtree} (services started at boot by hutch setup's service run there already)`,
      };
    }
    return {
      ...base,
      status: 'WARN',
      reason: `${d.path} is not writable by you and systemd is not the init, so nothing is delegated: ${ALL_LIMIT_FLAGS} are refused with an error`,
      fix: `${sudo(ctx)}hutch setup --user ${ctx.user.name}   # delegates ${subtree} and starts your logins and boot service inside it`,
    };
  }
  const present = LIMIT_CONTROLLERS.filter(([c]) => d.controllers.includes(c));
  const missing = LIMIT_CONTROLLERS.filter(([c]) => !d.controllers.includes(c));
  const where =
    d.source === 'systemd-user-service'
      ? `to user@${ctx.user.uid}.service`
      : d.source === 'hutch-setup'
        ? `in ${d.path} (by hutch setup)`
        : `in ${d.path}`;
  if (missing.length === 0) {
    return {
      ...base,
      status: 'PASS',
      reason: `${present.map(([c]) => c).join(', ')} are delegated ${where}: ${refused(present)} work`,
    };
  }
  return {
    ...base,
    status: 'WARN',
    reason: `${present.length > 0 ? `delegated ${where}: ${present.map(([c]) => c).join(', ')}; ` : ''}not delegated: ${missing.map(([c]) => c).join(', ')}, so ${refused(missing)} are refused with an error`,
    fix: systemd
      ? delegateFix(ctx)
      : d.source === 'hutch-setup'
        ? `${sudo(ctx)}hutch setup --user ${ctx.user.name}   # enables the controllers the kernel offers down to ${d.path}`
        : `echo '${missing.map(([c]) => `+${c}`).join(' ')}' | ${sudo(ctx)}tee ${d.path.replace(/\/[^/]*$/, '')}/cgroup.subtree_control`,
  };
}

export function sessionChecks(ctx: DoctorContext, facts: Facts): Check[] {
  if (!ctx.rootless) return [];
  const topic = 'Session';
  const checks: Check[] = [];
  const name = ctx.user.name;
  const s = sudo(ctx);
  if (facts.systemd()) {
    checks.push(
      lingerEnabled(ctx.host, name)
        ? {
            id: 'session.linger',
            topic,
            title: 'Linger',
            status: 'PASS',
            reason: `lingering is enabled for ${name}: containers and /run/user/${ctx.user.uid} outlive your last logout`,
          }
        : {
            id: 'session.linger',
            topic,
            title: 'Linger',
            status: 'WARN',
            reason: `lingering is off for ${name}: at your last logout systemd stops your user manager, removes /run/user/${ctx.user.uid} and may kill your containers`,
            fix: `${s}loginctl enable-linger ${name}`,
          },
    );
  } else {
    checks.push({
      id: 'session.linger',
      topic,
      title: 'Linger',
      status: 'INFO',
      reason: `PID 1 is ${pid1Name(ctx.host) ?? 'unknown'}, not systemd: linger does not apply, and logging out does not stop containers`,
    });
  }
  checks.push(bootServiceCheck(ctx, facts.systemd()));
  const rd = runtimeDirState(ctx.host, ctx.env, ctx.user.uid);
  if (rd.usable) {
    checks.push({
      id: 'session.runtime-dir',
      topic,
      title: 'XDG_RUNTIME_DIR',
      status: 'PASS',
      reason: `${rd.xdg} is yours: runtime state goes to ${rd.runroot}`,
    });
  } else {
    const fix = rd.systemdDir
      ? `export XDG_RUNTIME_DIR=${rd.systemdDir}`
      : facts.systemd()
        ? `${s}loginctl enable-linger ${name}\nexport XDG_RUNTIME_DIR=/run/user/${ctx.user.uid}`
        : `${s}hutch setup --user ${name}\nexport XDG_RUNTIME_DIR=/run/user/${ctx.user.uid}`;
    checks.push({
      id: 'session.runtime-dir',
      topic,
      title: 'XDG_RUNTIME_DIR',
      status: 'WARN',
      reason: `${rd.problem ?? 'XDG_RUNTIME_DIR is not set'}: hutch falls back to ${rd.runroot} (private and checked, but not cleaned at logout)`,
      fix,
    });
  }
  return checks;
}

/** Whether hutch setup's boot service brings the user's containers with restart policies back after a reboot. */
function bootServiceCheck(ctx: DoctorContext, systemd: boolean): Check {
  const base = { id: 'session.boot-service', topic: 'Session', title: 'Boot service' } as const;
  const name = ctx.user.name;
  const home = parsePasswd(ctx.host.readFile('/etc/passwd') ?? '').find((e) => e.uid === ctx.user.uid)?.home;
  const where = systemd
    ? home && `${home}/.config/systemd/user/default.target.wants/${USER_UNIT}`
    : bootScriptPath(name);
  if (where && ctx.host.exists(where)) {
    return {
      ...base,
      status: 'PASS',
      reason: `${systemd ? `${USER_UNIT} is enabled` : `${where} runs at boot`}: containers with restart policies always and unless-stopped come back after a reboot`,
    };
  }
  return {
    ...base,
    status: 'INFO',
    reason: `no boot service of hutch setup${where ? ` (${where})` : ''}: containers with restart policies always and unless-stopped do not come back after a reboot until you run hutch start --all`,
    fix: `${sudo(ctx)}hutch setup --user ${name}`,
  };
}
