/**
 * The PAM session hook: on hosts with cgroup v2, PAM and an init other than
 * systemd, every login of the user starts inside the cgroup subtree setup
 * delegated to them (cgroup-subtree.ts), as pam_systemd does for systemd's
 * sessions. One line in the session stack the distribution's login
 * services include, `optional` so that a failure never stops a login; it
 * runs the user's boot script with `login` (boot-script.ts), which moves
 * the process opening the session, and with it the user's shell, there.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readIfExists, writeFileAtomic } from '../../util/fs-atomic.ts';
import { bootScriptPath } from './names.ts';
import type { SetupStep, SetupTarget } from './types.ts';

/** The session stacks login services include, by distribution (Debian, Arch/Gentoo/Void, others, Alpine). */
const SESSION_FILES = [
  'etc/pam.d/common-session',
  'etc/pam.d/system-login',
  'etc/pam.d/system-session',
  'etc/pam.d/base-session',
];

export function pamLine(t: SetupTarget): string {
  return `session optional pam_exec.so quiet ${bootScriptPath(t.user.name)} login`;
}

export function pamSteps(t: SetupTarget): SetupStep[] {
  const rel = SESSION_FILES.find((f) => existsSync(join(t.hostRoot, f)));
  if (!rel) return []; // no PAM: logins cannot be hooked, and the boot service still runs inside the subtree
  const file = join(t.hostRoot, rel);
  const line = pamLine(t);
  const base = { id: 'cgroup:pam', title: 'logins in the delegated cgroup' } as const;
  if ((readIfExists(file) ?? '').split('\n').includes(line)) {
    return [{ ...base, status: 'ok', detail: `${file} starts ${t.user.name}'s sessions there` }];
  }
  return [
    {
      ...base,
      status: 'change',
      detail: `have PAM start ${t.user.name}'s login sessions inside the delegated cgroup (from the next login)`,
      diff: [`${file}: +${line}`],
      undo: [{ kind: 'line', path: file, line }],
      apply: () => {
        // Re-read: another admin tool may have changed the file since planning.
        const text = readIfExists(file) ?? '';
        const sep = text === '' || text.endsWith('\n') ? '' : '\n';
        writeFileAtomic(
          file,
          `${text}${sep}# hutch setup: ${t.user.name}'s logins start in their delegated cgroup\n${line}\n`,
          0o644,
        );
      },
    },
  ];
}
