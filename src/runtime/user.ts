/**
 * `-u/--user` and `--group-add`, resolved against the container's own
 * /etc/passwd and /etc/group, as docker does when it starts a container:
 *
 * - `user` is a name or a uid; `user:group` adds a name or a gid. A uid
 *   missing from passwd is fine (gid 0, HOME /); a name missing is an error.
 * - Without an explicit group the user's primary gid comes from passwd, and
 *   the groups that list the user as a member become supplementary groups.
 *   With an explicit group there are none of those: the caller asked for
 *   that group (runc's rules, which docker follows).
 * - `--group-add` entries are added: gids as they are, names via /etc/group.
 *   `keep-groups` (podman's: keep the caller's own supplementary groups) is
 *   only passed on as a flag.
 *
 * The files are read with ./in-root.ts, so a hostile image cannot make
 * hutch read host files through symbolic links.
 */
import { HutchError } from '../util/errors.ts';
import { readFileInRoot } from './in-root.ts';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
  /** The passwd name, when the user was found there. */
  name: string | undefined;
  /** `--group-add keep-groups` was given. */
  keepGroups: boolean;
}

export interface PasswdLine {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupLine {
  name: string;
  gid: number;
  members: string[];
}

/** runc's bound: ids are non-negative 32-bit signed integers. */
const MAX_ID = 2 ** 31 - 1;
const KEEP_GROUPS = 'keep-groups';

/** A decimal id, or undefined when `s` is not all digits. */
function parseId(s: string): number | undefined {
  return /^[0-9]+$/.test(s) ? Number(s) : undefined;
}

function validId(id: number | undefined): id is number {
  return id !== undefined && id <= MAX_ID;
}

/** Fields of the meaningful lines: comments, blank lines and NIS `+`/`-` entries are skipped. */
function records(text: string): string[][] {
  const out: string[][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const first = line.trimStart()[0];
    if (first === undefined || first === '#' || first === '+' || first === '-') continue;
    out.push(line.split(':'));
  }
  return out;
}

/** passwd lines `name:password:uid:gid:gecos:home:shell`; lines without a name or valid ids are skipped. */
export function parsePasswd(text: string): PasswdLine[] {
  const out: PasswdLine[] = [];
  for (const f of records(text)) {
    const name = f[0] ?? '';
    const uid = parseId(f[2] ?? '');
    const gid = parseId(f[3] ?? '');
    if (name === '' || !validId(uid) || !validId(gid)) continue;
    out.push({ name, uid, gid, home: f[5] ?? '' });
  }
  return out;
}

/** group lines `name:password:gid:member,member`; lines without a name or valid gid are skipped. */
export function parseGroup(text: string): GroupLine[] {
  const out: GroupLine[] = [];
  for (const f of records(text)) {
    const name = f[0] ?? '';
    const gid = parseId(f[2] ?? '');
    if (name === '' || !validId(gid)) continue;
    const members = (f[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== '');
    out.push({ name, gid, members });
  }
  return out;
}

function checkRange(id: number, what: string, spec: string): number {
  if (id > MAX_ID) {
    throw new HutchError(
      'BAD_USER',
      `${what} ${id} in ${JSON.stringify(spec)} is out of range (0-${MAX_ID})`,
      {
        exitCode: 126,
      },
    );
  }
  return id;
}

function noSuchGroup(name: string): HutchError {
  return new HutchError('NO_SUCH_GROUP', `unable to find group ${name}: no matching entries in group file`, {
    hint: 'Give a gid, or a group that exists in the image (its /etc/group).',
    exitCode: 126,
  });
}

/**
 * The ids a container process runs with. `spec` is `-u`, or the image's
 * User when no `-u` was given; empty or undefined means root.
 */
export function resolveUser(rootfs: string, spec: string | undefined, groupAdd: string[] = []): ResolvedUser {
  const raw = spec ?? '';
  const colon = raw.indexOf(':');
  const userArg = colon < 0 ? raw : raw.slice(0, colon);
  const groupArg = colon < 0 ? undefined : raw.slice(colon + 1);
  // Read lazily: `-u 0` in an image without /etc/passwd needs neither.
  let passwd: PasswdLine[] | undefined;
  let groups: GroupLine[] | undefined;
  const passwdLines = (): PasswdLine[] =>
    (passwd ??= parsePasswd(readFileInRoot(rootfs, '/etc/passwd') ?? ''));
  const groupLines = (): GroupLine[] => (groups ??= parseGroup(readFileInRoot(rootfs, '/etc/group') ?? ''));

  // The user: by uid or by name; an empty user part (`-u :100`) is root.
  const numericUid = parseId(userArg === '' ? '0' : userArg);
  let uid: number;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  const entry =
    numericUid === undefined
      ? passwdLines().find((p) => p.name === userArg)
      : passwdLines().find((p) => p.uid === numericUid);
  if (entry !== undefined) {
    ({ uid, gid, name } = entry);
    if (entry.home !== '') home = entry.home;
  } else if (numericUid !== undefined) {
    uid = checkRange(numericUid, 'uid', raw);
  } else {
    throw new HutchError(
      'NO_SUCH_USER',
      `unable to find user ${userArg}: no matching entries in passwd file`,
      {
        hint: 'Give a uid, or a user that exists in the image (its /etc/passwd).',
        exitCode: 126,
      },
    );
  }

  const additionalGids: number[] = [];
  if (groupArg === undefined || groupArg === '') {
    if (name !== undefined) {
      for (const g of groupLines()) if (g.members.includes(name)) additionalGids.push(g.gid);
    }
  } else {
    gid = groupByNameOrId(groupArg, groupLines, raw);
  }

  let keepGroups = false;
  for (const g of groupAdd) {
    if (g === KEEP_GROUPS) {
      keepGroups = true;
      continue;
    }
    if (g === '') {
      throw new HutchError('BAD_FLAG', '--group-add needs a group name or gid', { exitCode: 126 });
    }
    additionalGids.push(groupByNameOrId(g, groupLines, g));
  }
  return { uid, gid, additionalGids: [...new Set(additionalGids)], home, name, keepGroups };
}

/** A gid given as a number (taken as is, as runc does) or a name from /etc/group. */
function groupByNameOrId(arg: string, groupLines: () => GroupLine[], spec: string): number {
  const id = parseId(arg);
  if (id !== undefined) return checkRange(id, 'gid', spec);
  const found = groupLines().find((g) => g.name === arg);
  if (found === undefined) throw noSuchGroup(arg);
  return found.gid;
}
