/**
 * `hutch setup --user NAME`: prepares a host for a rootless user, as an
 * admin would by hand. Plans first (every step says what it found and what
 * it would change), then applies; running it again changes nothing.
 */
import { join } from 'node:path';
import { lookupUser } from '../../host/passwd.ts';
import { identity } from '../../sys/identity.ts';
import { HutchError } from '../../util/errors.ts';
import { cgroupStep } from './cgroups.ts';
import { deviceSteps } from './devices.ts';
import { runtimeDirSteps } from './runtime-dir.ts';
import { defaultStorePath, storageSteps } from './storage.ts';
import { subIdStep } from './subids.ts';
import { cgroupSubtreeStep } from './cgroup-subtree.ts';
import type { InitName } from './init.ts';
import { pamSteps } from './pam.ts';
import { serviceSteps, unifiedCgroupV2 } from './services.ts';
import { hasSystemd, portStartSteps, systemdSteps } from './systemd.ts';
import { journal } from './undo.ts';
import type { SetupStep, SetupTarget } from './types.ts';

export type { SetupStep } from './types.ts';

export function setupTarget(
  userName: string,
  hostRoot = '/',
  store?: string,
  portStart?: number,
  init?: InitName,
): SetupTarget {
  const user =
    lookupUser(userName, join(hostRoot, 'etc/passwd')) ??
    (/^\d+$/.test(userName) ? lookupUser(Number(userName), join(hostRoot, 'etc/passwd')) : undefined);
  if (!user) {
    throw new HutchError('NO_SUCH_USER', `no user "${userName}" in ${join(hostRoot, 'etc/passwd')}`, {
      hint: 'Create the user first (useradd -m NAME), then run setup again.',
    });
  }
  return {
    user: { name: user.name, uid: user.uid, gid: user.gid, home: user.home },
    hostRoot,
    live: hostRoot === '/',
    ...(store !== undefined ? { store: store === '' ? defaultStorePath(user) : store } : {}),
    ...(portStart !== undefined ? { portStart } : {}),
    ...(init !== undefined ? { init } : {}),
  };
}

export function planSetup(t: SetupTarget): SetupStep[] {
  return [
    subIdStep(t),
    ...deviceSteps(t),
    ...cgroupStep(t),
    ...runtimeDirSteps(t),
    ...systemdSteps(t),
    // Without systemd, on cgroup v2: a subtree of the user's own, and their logins started in it.
    ...(!hasSystemd(t) && unifiedCgroupV2(t) ? [cgroupSubtreeStep(t), ...pamSteps(t)] : []),
    ...serviceSteps(t),
    ...portStartSteps(t, t.portStart),
    ...(t.store !== undefined ? storageSteps(t, t.store) : []),
  ];
}

export function applySetup(t: SetupTarget, steps: SetupStep[]): SetupStep[] {
  if (identity().rootless) {
    throw new HutchError('NEEDS_ROOT', 'hutch setup changes system files and must run as root', {
      hint: 'Run it with sudo: sudo hutch setup --user $(id -un). Use --dry-run to see the plan without root.',
    });
  }
  const done: SetupStep[] = [];
  for (const s of steps) {
    if (s.status === 'change' && s.apply) {
      journal(t, s.undo ?? []);
      s.apply();
      done.push(s);
    }
  }
  return done;
}
