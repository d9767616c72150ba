/**
 * `--userns`: which user namespace a container runs in.
 *
 * - `host` (the default, also ''): hutch's own. Rootless, container root is
 *   the user who runs hutch and the other ids are the user's sub-ids.
 * - `keep-id[:uid=U,gid=G]` (rootless): the user's own uid and gid stay the
 *   same inside (or become U and G), so files the container writes to a
 *   bind-mounted directory are the user's, under the user's own id inside.
 *   The container runs as that user unless `--user` says otherwise, and
 *   finds a passwd entry for it.
 * - `nomap` (rootless): the user's own id is not in the container at all;
 *   container root is the first sub-id. A process that escapes owns nothing
 *   of the user's.
 *
 * Both need a container namespace of their own and a shifted copy of the
 * image (storage/shifted.ts). `auto` (a private range per container) is
 * podman's rootful feature; hutch refuses it with the alternatives.
 */
import { HutchError } from '../util/errors.ts';
import { keepIdMapping, noMapMapping, splitAtRanges } from '../util/idmap.ts';
import type { IdMappings, IdRange } from '../util/idmap.ts';

export interface UsernsChoice {
  mode: 'host' | 'keep-id' | 'nomap';
  /** keep-id: the id the user keeps inside. */
  uid?: number;
  gid?: number;
}

function bad(message: string, hint: string): HutchError {
  return new HutchError('BAD_FLAG', message, { hint });
}

const MAX_ID = 2 ** 31 - 1;

export function parseUserns(value: string, rootless: boolean): UsernsChoice {
  const colon = value.indexOf(':');
  const mode = colon < 0 ? value : value.slice(0, colon);
  const rest = colon < 0 ? '' : value.slice(colon + 1);
  if (mode === '' || mode === 'host') {
    if (rest) throw bad(`--userns ${value}: host takes no options`, 'Use --userns host.');
    return { mode: 'host' };
  }
  if (mode === 'keep-id' || mode === 'nomap') {
    if (!rootless) {
      throw bad(
        `--userns ${mode} is only for rootless containers`,
        'As root the container already sees the ids it is given; use --user UID:GID to run as a user.',
      );
    }
    if (mode === 'nomap') {
      if (rest) throw bad(`--userns ${value}: nomap takes no options`, 'Use --userns nomap.');
      return { mode };
    }
    const choice: UsernsChoice = { mode };
    for (const opt of rest ? rest.split(',') : []) {
      const [k, v = ''] = opt.split('=', 2);
      if ((k !== 'uid' && k !== 'gid') || !/^[0-9]+$/.test(v) || Number(v) > MAX_ID) {
        throw bad(
          `--userns ${value}: "${opt}" is not an option of keep-id`,
          'Use keep-id, or keep-id:uid=UID,gid=GID.',
        );
      }
      choice[k] = Number(v);
    }
    return choice;
  }
  if (mode === 'auto') {
    throw bad(
      '--userns auto is not supported',
      'Use --userns nomap (the container gets only your sub-ids) or keep-id (your own id stays yours inside).',
    );
  }
  throw bad(`--userns ${value}: not supported`, 'Use host (the default), keep-id or nomap.');
}

/**
 * The mapping for a choice, in hutch's namespace whose highest ids are
 * `top`; `me` is the user's own uid and gid (what keep-id keeps). Undefined
 * for `host`: the container shares hutch's namespace.
 */
export function usernsMappings(
  choice: UsernsChoice,
  me: { uid: number; gid: number },
  ns: { uid: IdRange[]; gid: IdRange[] },
): IdMappings | undefined {
  if (choice.mode === 'host') return undefined;
  const highest = (r: IdRange[]): number => Math.max(0, ...r.map((x) => x.first + x.count - 1));
  const top = { maxUid: highest(ns.uid), maxGid: highest(ns.gid) };
  if (top.maxUid < 1 || top.maxGid < 1) {
    throw new HutchError('NO_SUBIDS', `--userns ${choice.mode} needs sub-ids, and this user has none`, {
      hint: 'Give the user sub-ids: run `hutch doctor` and the `hutch setup` it suggests.',
    });
  }
  const maps =
    choice.mode === 'nomap'
      ? { uid: noMapMapping(top.maxUid), gid: noMapMapping(top.maxGid) }
      : {
          uid: keepIdMapping(choice.uid ?? me.uid, top.maxUid),
          gid: keepIdMapping(choice.gid ?? me.gid, top.maxGid),
        };
  return { uid: splitAtRanges(maps.uid, ns.uid), gid: splitAtRanges(maps.gid, ns.gid) };
}
