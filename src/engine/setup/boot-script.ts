/**
 * The per-user script that setup writes where systemd is not the init
 * (`/etc/hutch/boot-USER.sh`, root's, 0755). The init runs it as root at
 * boot (`start`); with cgroup v2, PAM runs it at each login (`login`).
 *
 * - It makes again what a reboot empties: /run/user/UID (no logind makes
 *   it here) and, on cgroup v2, the subtree delegated to the user, with the
 *   controllers the kernel offers enabled down to it.
 * - It puts the process it serves in a leaf of that subtree (`boot`, or
 *   `login` for the process that opens a PAM session, whose children, the
 *   user's shell among them, follow it): the kernel lets a process move
 *   between cgroups only below one whose cgroup.procs the mover may write,
 *   so the user's processes must start inside the subtree for hutch to move
 *   containers into cgroups of their own there.
 * - `start` then becomes the user, with the user's environment, and runs
 *   `hutch start --all` for the restart policies always and unless-stopped.
 *   hutch's other helpers (the pause process, conmon, the healthcheck
 *   supervisor) are started by that command on demand.
 */
import { join } from 'node:path';
import { delegatedSubtree, SUBTREE_LEAVES } from '../../host/cgroups.ts';
import { packageRoot } from '../../sys/native-paths.ts';
import { DELEGATED } from './systemd.ts';
import type { SetupTarget } from './types.ts';
import type { InitName } from './init.ts';

/** The command that brings back the user's containers, as the user runs it. */
export function restartCommand(): string[] {
  return [
    join(packageRoot(), 'bin/hutch'),
    'start',
    '--all',
    '--filter',
    'restart-policy=always',
    '--filter',
    'restart-policy=unless-stopped',
  ];
}

/** A word for sh, quoted only when it needs it. */
export function shq(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * How root becomes the user: the init's own tool where it has one (runit's
 * chpst, s6's s6-setuidgid), else util-linux's setpriv, else su.
 */
export function dropTool(
  t: SetupTarget,
  init: InitName | undefined,
  hasSetpriv: boolean,
): (cmd: string[]) => string {
  const u = t.user;
  if (init === 'runit') return (cmd) => ['chpst', '-u', shq(u.name), ...cmd].join(' ');
  if (init === 's6') return (cmd) => ['s6-setuidgid', shq(u.name), ...cmd].join(' ');
  if (hasSetpriv)
    return (cmd) => ['setpriv', `--reuid=${u.uid}`, `--regid=${u.gid}`, '--init-groups', ...cmd].join(' ');
  return (cmd) => ['su', '-s', '/bin/sh', shq(u.name), '-c', shq(cmd.join(' '))].join(' ');
}

export function bootScript(
  t: SetupTarget,
  init: InitName | undefined,
  cgroupV2: boolean,
  hasSetpriv: boolean,
): string {
  const u = t.user;
  const run = `/run/user/${u.uid}`;
  const env = [
    'env',
    '-i',
    `HOME=${shq(u.home)}`,
    `USER=${shq(u.name)}`,
    `LOGNAME=${shq(u.name)}`,
    `XDG_RUNTIME_DIR=${run}`,
    `PATH=${SAFE_PATH}`,
    ...restartCommand().map(shq),
  ];
  const become = dropTool(t, init, hasSetpriv);
  const sub = `/sys/fs/cgroup${delegatedSubtree(u.uid)}`;
  const lines = [
    '#!/bin/sh',
    `# hutch setup: ${u.name}'s containers with a restart policy come back at boot (start),`,
    `# and ${u.name}'s logins start in the cgroup delegated to them (login, from PAM).`,
    `# Run as root. Remove it with: hutch setup --user ${u.name} --undo`,
    'set -u',
    `uid=${u.uid} gid=${u.gid}`,
    '',
    '# The runtime directory, which no login manager makes on this host.',
    `run=${run}`,
    '[ -d "$run" ] || { mkdir -p "$run" && chown "$uid:$gid" "$run" && chmod 0700 "$run"; }',
    '',
  ];
  if (cgroupV2) {
    lines.push(
      `# cgroup v2 without systemd: ${sub} is ${u.name}'s, with the controllers the`,
      '# kernel offers enabled down to it; "$1" is the leaf for process "$2".',
      'cg=/sys/fs/cgroup',
      `sub=${sub}`,
      'enter() {',
      '  [ -f "$cg/cgroup.controllers" ] || return 0',
      '  mkdir -p "$sub/$1" || return 0',
      `  for c in ${DELEGATED.join(' ')}; do`,
      '    for d in "$cg" "${sub%/*}" "$sub"; do',
      '      grep -qw "$c" "$d/cgroup.controllers" && { echo "+$c" > "$d/cgroup.subtree_control"; } 2>/dev/null',
      '    done',
      '  done',
      '  chown "$uid:$gid" "$sub" "$sub/cgroup.procs" "$sub/cgroup.subtree_control" "$sub/cgroup.threads" \\',
      '    "$sub/$1" "$sub/$1/cgroup.procs"',
      '  echo "$2" > "$sub/$1/cgroup.procs"',
      '}',
      '',
    );
  } else {
    lines.push('enter() { :; } # cgroup v2 was not found when setup ran: nothing to delegate', '');
  }
  lines.push(
    'case "${1:-}" in',
    'start)',
    `  enter ${SUBTREE_LEAVES.boot} $$`,
    `  exec ${become(env)}`,
    '  ;;',
    'login)',
    "  # From pam_exec: the process opening the session is this script's parent.",
    `  [ "\${PAM_TYPE:-}" = open_session ] && [ "\${PAM_USER:-}" = ${shq(u.name)} ] || exit 0`,
    `  enter ${SUBTREE_LEAVES.login} "$PPID"`,
    '  exit 0',
    '  ;;',
    '*)',
    '  echo "usage: $0 start|login" >&2',
    '  exit 2',
    '  ;;',
    'esac',
  );
  return lines.join('\n') + '\n';
}
