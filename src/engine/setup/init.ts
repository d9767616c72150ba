/**
 * Which init runs the host, so setup writes the service files that init
 * reads. Asked in the order that can be trusted most: what PID 1 is, then
 * what a running init leaves in /run, then (a host root prepared offline,
 * or an init that left nothing in /run) what is installed. `--init` overrides.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readIfExists } from '../../util/fs-atomic.ts';
import type { SetupTarget } from './types.ts';

export const INITS = ['systemd', 'openrc', 'runit', 'dinit', 's6'] as const;
export type InitName = (typeof INITS)[number];

export interface InitFound {
  name: InitName | undefined;
  /** How it was told, for the plan. */
  why: string;
}

/** PID 1's command names (/proc/1/comm) that name their init. */
const PID1: Record<string, InitName> = {
  systemd: 'systemd',
  'openrc-init': 'openrc',
  runit: 'runit',
  dinit: 'dinit',
  's6-svscan': 's6',
};

/** What each init makes in /run while it runs. */
const RUNNING: Array<[InitName, string[]]> = [
  ['systemd', ['run/systemd/system']], // sd_booted()'s own test
  ['openrc', ['run/openrc']],
  ['runit', ['run/runit']],
  ['dinit', ['run/dinitctl']], // the system instance's control socket
  ['s6', ['run/s6-rc']], // s6-rc's live directory
];

/** What each init installs, for a host that shows no running one. */
const INSTALLED: Array<[InitName, string[]]> = [
  ['openrc', ['sbin/openrc-run', 'usr/sbin/openrc-run']],
  ['runit', ['etc/runit/sv', 'etc/runit/runsvdir']],
  ['dinit', ['etc/dinit.d']],
  ['s6', ['etc/s6-rc', 'etc/s6/adminsv']],
];

export function detectInit(t: SetupTarget): InitFound {
  if (t.init) return { name: t.init, why: 'chosen with --init' };
  const at = (p: string): boolean => existsSync(join(t.hostRoot, p));
  const comm = readIfExists(join(t.hostRoot, 'proc/1/comm'))?.trim();
  if (comm && PID1[comm]) return { name: PID1[comm], why: `PID 1 is ${comm}` };
  for (const [name, marks] of RUNNING) {
    const seen = marks.find(at);
    if (seen) return { name, why: `/${seen} exists` };
  }
  for (const [name, marks] of INSTALLED) {
    const seen = marks.find(at);
    if (seen) return { name, why: `/${seen} is installed (no running init recognised)` };
  }
  return {
    name: undefined,
    why: `PID 1 is ${comm ?? 'unknown'}, which is none of ${INITS.join(', ')}`,
  };
}
