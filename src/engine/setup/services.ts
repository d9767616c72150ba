/**
 * Service files that bring the user's containers with restart policies
 * (always, unless-stopped) back after a reboot, for the init the host runs:
 *
 * - systemd: a user unit, `~/.config/systemd/user/hutch-restart.service`,
 *   enabled for default.target by the link `systemctl --user enable` would
 *   make; the user's manager runs it at boot (linger, above) or at login.
 * - OpenRC: `/etc/init.d/hutch.USER`, in the default runlevel.
 * - runit: `/etc/sv/hutch-USER` (Artix: `/etc/runit/sv`), linked into the
 *   directory runsvdir scans; a oneshot (its finish script marks it down).
 * - dinit: `/etc/dinit.d/hutch-USER`, a scripted service that `boot` waits for.
 * - s6-rc: a oneshot source definition, added to the default bundle where
 *   the host has one (Artix's adminsv); the database is compiled by the admin.
 *
 * All but systemd run, as root, the user's boot script (boot-script.ts),
 * which prepares what a reboot empties and becomes the user.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { lstatIfExists, readIfExists } from '../../util/fs-atomic.ts';
import { bootScript, restartCommand, shq } from './boot-script.ts';
import { bootScriptPath, USER_UNIT } from './names.ts';
import { filesStep } from './files.ts';
import type { WantedFile, WantedLink } from './files.ts';
import { detectInit } from './init.ts';
import type { InitName } from './init.ts';
import type { SetupStep, SetupTarget } from './types.ts';

/** The host's unified cgroup v2 hierarchy, as setup sees it below the host root. */
export function unifiedCgroupV2(t: SetupTarget): boolean {
  return existsSync(join(t.hostRoot, 'sys/fs/cgroup/cgroup.controllers'));
}

function hasSetpriv(t: SetupTarget): boolean {
  return ['usr/bin/setpriv', 'bin/setpriv', 'usr/sbin/setpriv', 'sbin/setpriv'].some((p) =>
    existsSync(join(t.hostRoot, p)),
  );
}

const at = (t: SetupTarget, p: string): string => join(t.hostRoot, p);

function systemdUnit(t: SetupTarget): SetupStep {
  const owner = { uid: t.user.uid, gid: t.user.gid };
  const dir = join(t.user.home, '.config/systemd/user');
  const unit = [
    '# hutch setup: containers with a restart policy come back at boot (with linger) or at login.',
    '[Unit]',
    'Description=hutch containers with restart policies always and unless-stopped',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    // The containers are hutch's, not this unit's: stopping or failing it must not kill them.
    'KillMode=process',
    `ExecStart=${restartCommand().map(shq).join(' ')}`,
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
  // Root writes into the user's home: through a directory the user made a link, it would write elsewhere.
  const linked = [
    '.config',
    '.config/systemd',
    '.config/systemd/user',
    '.config/systemd/user/default.target.wants',
  ]
    .map((p) => at(t, join(t.user.home, p)))
    .filter((p) => lstatIfExists(p)?.isSymbolicLink());
  if (linked.length > 0) {
    return {
      id: 'service',
      title: 'boot service (systemd user unit)',
      status: 'manual',
      detail: `${linked.join(', ')} is a symbolic link, and setup, as root, writes only into real directories of the home: make it a directory, or enable the unit as ${t.user.name} (systemctl --user enable ${USER_UNIT}), then run setup again`,
    };
  }
  if (!existsSync(at(t, t.user.home))) {
    return {
      id: 'service',
      title: 'boot service (systemd user unit)',
      status: 'manual',
      detail: `${t.user.name}'s home ${t.user.home} does not exist, so there is no place for the user unit: create it (and the user's store goes there too), then run setup again`,
    };
  }
  return filesStep({
    id: 'service',
    title: 'boot service (systemd user unit)',
    doing: `write ${t.user.name}'s user unit ${USER_UNIT} and enable it, so containers with restart policies come back at boot (takes effect at the next boot or login)`,
    done: `${join(dir, USER_UNIT)} is enabled for default.target`,
    files: [{ path: at(t, join(dir, USER_UNIT)), content: unit, mode: 0o644, owner }],
    links: [
      {
        path: at(t, join(dir, 'default.target.wants', USER_UNIT)),
        target: join(dir, USER_UNIT),
        owner,
      },
    ],
  });
}

interface InitFiles {
  files: WantedFile[];
  links: WantedLink[];
  /** What the admin still has to do, where the init needs more than files. */
  after?: string;
}

function openrc(t: SetupTarget, script: string): InitFiles {
  const name = `hutch.${t.user.name}`;
  const text = [
    '#!/sbin/openrc-run',
    `# hutch setup: ${t.user.name}'s containers with a restart policy come back at boot.`,
    `description="hutch containers of ${t.user.name} (restart policies always, unless-stopped)"`,
    '',
    'depend() {',
    '\tneed localmount',
    '\tafter net',
    '}',
    '',
    'start() {',
    `\tebegin "Starting the hutch containers of ${t.user.name}"`,
    `\t${script} start`,
    '\teend $?',
    '}',
    '',
    "# Nothing of this service keeps running: the containers are hutch's, and end with the system.",
    'stop() {',
    '\treturn 0',
    '}',
    '',
  ].join('\n');
  return {
    files: [{ path: at(t, `etc/init.d/${name}`), content: text, mode: 0o755 }],
    links: [{ path: at(t, `etc/runlevels/default/${name}`), target: `/etc/init.d/${name}` }],
  };
}

function runit(t: SetupTarget, script: string): InitFiles {
  const name = `hutch-${t.user.name}`;
  // Artix keeps service directories in /etc/runit/sv; Void, Debian and the rest in /etc/sv.
  const svdir = existsSync(at(t, 'etc/runit/sv')) ? '/etc/runit/sv' : '/etc/sv';
  const scandir = ['var/service', 'etc/service', 'run/runit/service'].find((d) => existsSync(at(t, d)));
  const run = [
    '#!/bin/sh',
    `# hutch setup: ${t.user.name}'s containers with a restart policy come back at boot.`,
    `exec ${script} start 2>&1`,
    '',
  ].join('\n');
  const finish = [
    '#!/bin/sh',
    '# The job is done when run ends: a oneshot, which runsv must not start again.',
    'exec sv down .',
    '',
  ].join('\n');
  return {
    files: [
      { path: at(t, `${svdir}/${name}/run`), content: run, mode: 0o755 },
      { path: at(t, `${svdir}/${name}/finish`), content: finish, mode: 0o755 },
    ],
    links: scandir ? [{ path: at(t, `${scandir}/${name}`), target: `${svdir}/${name}` }] : [],
    ...(scandir
      ? {}
      : {
          after: `link ${svdir}/${name} into the directory runsvdir scans (none of /var/service, /etc/service, /run/runit/service is here)`,
        }),
  };
}

/** The directory the `boot` service waits for (its waits-for.d), where `dinitctl enable` puts links. */
function dinitBootDir(t: SetupTarget): string {
  const boot = readIfExists(at(t, 'etc/dinit.d/boot')) ?? '';
  const d = /^\s*waits-for\.d\s*[=:]\s*(\S+)/m.exec(boot)?.[1] ?? 'boot.d';
  return d.startsWith('/') ? d : `/etc/dinit.d/${d}`;
}

function dinit(t: SetupTarget, script: string): InitFiles {
  const name = `hutch-${t.user.name}`;
  const text = [
    `# hutch setup: ${t.user.name}'s containers with a restart policy come back at boot.`,
    'type = scripted',
    `command = ${script} start`,
    '',
  ].join('\n');
  return {
    files: [{ path: at(t, `etc/dinit.d/${name}`), content: text, mode: 0o644 }],
    links: [{ path: at(t, `${dinitBootDir(t).slice(1)}/${name}`), target: `/etc/dinit.d/${name}` }],
  };
}

function s6(t: SetupTarget, script: string): InitFiles {
  const name = `hutch-${t.user.name}`;
  // Artix compiles /etc/s6/adminsv with its own sources (s6-db-reload); elsewhere the place is the admin's.
  const artix = existsSync(at(t, 'etc/s6/adminsv'));
  const src = artix ? 'etc/s6/adminsv' : 'etc/s6-rc/source';
  const files: WantedFile[] = [
    { path: at(t, `${src}/${name}/type`), content: 'oneshot\n', mode: 0o644 },
    // An execline command line, as s6-rc reads `up`.
    { path: at(t, `${src}/${name}/up`), content: `${script} start\n`, mode: 0o644 },
  ];
  if (artix) files.push({ path: at(t, `${src}/default/contents.d/${name}`), content: '', mode: 0o644 });
  return {
    files,
    links: [],
    after: artix
      ? 'then compile it into the boot database: s6-db-reload'
      : `then add ${name} to the bundle your boot brings up (an empty file ${name} in its contents.d), compile the database (s6-rc-compile) and switch to it (s6-rc-update)`,
  };
}

const TITLES: Record<Exclude<InitName, 'systemd'>, string> = {
  openrc: 'boot service (OpenRC)',
  runit: 'boot service (runit)',
  dinit: 'boot service (dinit)',
  s6: 'boot service (s6-rc)',
};

export function serviceSteps(t: SetupTarget): SetupStep[] {
  const init = detectInit(t);
  if (init.name === 'systemd') return [systemdUnit(t)];
  const v2 = unifiedCgroupV2(t);
  const script = bootScriptPath(t.user.name);
  const scriptStep = (): SetupStep =>
    filesStep({
      id: 'service:script',
      title: 'boot script',
      doing: `write ${script}: as root it makes /run/user/${t.user.uid}${v2 ? ' and the delegated cgroup' : ''} again after a reboot, then runs hutch start --all as ${t.user.name}`,
      done: `${script} is in place`,
      files: [
        { path: at(t, script.slice(1)), content: bootScript(t, init.name, v2, hasSetpriv(t)), mode: 0o755 },
      ],
    });
  if (init.name === undefined) {
    const steps: SetupStep[] = [
      {
        id: 'service',
        title: 'boot service',
        status: 'ok',
        detail: `no init recognised (${init.why}), so no service file is written: choose one with --init ${['openrc', 'runit', 'dinit', 's6'].join('|')}, or have the boot run ${v2 ? `${script} start` : `as ${t.user.name}: ${restartCommand().join(' ')}`}`,
      },
    ];
    // With cgroup v2 the script still serves logins (the PAM hook), and the admin's own boot.
    return v2 ? [scriptStep(), ...steps] : steps;
  }
  const made = { openrc, runit, dinit, s6 }[init.name](t, script);
  const step = filesStep({
    id: 'service',
    title: TITLES[init.name],
    doing: `${init.why}: write the service that runs ${script} start at boot${made.after ? `; ${made.after}` : ''}`,
    done: `${init.why}: the service is in place${made.after ? ` (${made.after}, if not done yet)` : ''}`,
    files: made.files,
    links: made.links,
  });
  return [scriptStep(), step];
}
