/**
 * ID mappings of a container's own user namespace (`--userns keep-id`,
 * `--userns nomap`), in the OCI runtime spec's terms: container id ->
 * id in hutch's namespace ("host" for the spec, which is the namespace
 * that runs the runtime).
 *
 * A container with its own mapping sees the files of its root through it,
 * so the files must be owned by the mapped ids: `mapId` gives the id a
 * file must have here for the container to see `id`, and `unmapId` the
 * other way, for archives of the container's files (commit, export, cp).
 */

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface IdMappings {
  uid: IdMapping[];
  gid: IdMapping[];
}

/** The id that stands for nobody where an id has no mapping (the kernel's overflow id). */
export const OVERFLOW_ID = 65534;

export function mapId(maps: readonly IdMapping[], id: number): number | undefined {
  for (const m of maps)
    if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  return undefined;
}

export function unmapId(maps: readonly IdMapping[], id: number): number | undefined {
  for (const m of maps) if (id >= m.hostID && id < m.hostID + m.size) return m.containerID + (id - m.hostID);
  return undefined;
}

/**
 * `keep-id`: container id `keep` is this namespace's 0 (the user who runs
 * hutch), so the user's files are the container user's; the ids below it
 * move up by one to make room, the ids above it stay. `top` is the highest
 * id this namespace has.
 */
export function keepIdMapping(keep: number, top: number): IdMapping[] {
  const below = Math.min(keep, top);
  const out: IdMapping[] = [];
  if (below > 0) out.push({ containerID: 0, hostID: 1, size: below });
  out.push({ containerID: keep, hostID: 0, size: 1 });
  if (top > keep) out.push({ containerID: keep + 1, hostID: keep + 1, size: top - keep });
  return out;
}

/** `nomap`: the container's ids are the sub-ids only; the user's own id is not in it at all. */
export function noMapMapping(top: number): IdMapping[] {
  return [{ containerID: 0, hostID: 1, size: top }];
}

/** A range of ids this namespace has ("inside" column of its own uid_map). */
export interface IdRange {
  first: number;
  count: number;
}

/**
 * Cuts each mapping where its ids here cross from one of this namespace's
 * own ranges to the next: the kernel takes a line of a child's uid_map only
 * when its ids lie within one line of the parent's (a user with two sub-id
 * ranges has a namespace of three lines).
 */
export function splitAtRanges(maps: readonly IdMapping[], ranges: readonly IdRange[]): IdMapping[] {
  const cuts = [...new Set(ranges.flatMap((r) => [r.first, r.first + r.count]))].sort((a, b) => a - b);
  const out: IdMapping[] = [];
  for (const m of maps) {
    let start = m.hostID;
    const end = m.hostID + m.size;
    for (const cut of [...cuts.filter((c) => c > start && c < end), end]) {
      out.push({ containerID: m.containerID + (start - m.hostID), hostID: start, size: cut - start });
      start = cut;
    }
  }
  return out;
}

/** The ranges of a /proc/PID/[ug]id_map text, by their ids inside. */
export function rangesOf(mapText: string): IdRange[] {
  const out: IdRange[] = [];
  for (const line of mapText.split('\n')) {
    const [inside, , count] = line.trim().split(/\s+/).map(Number);
    if (inside !== undefined && count !== undefined && !Number.isNaN(count))
      out.push({ first: inside, count });
  }
  return out;
}

/** A short stable text for a mapping (names the shifted copy of an image made for it). */
export function mappingKey(maps: IdMappings): string {
  const part = (list: IdMapping[]): string =>
    list.map((m) => `${m.containerID}-${m.hostID}-${m.size}`).join('_');
  return `u${part(maps.uid)}.g${part(maps.gid)}`;
}

/** Owner translation for archive writers and readers, in either direction. */
export function ownerMapper(
  maps: IdMappings,
  direction: 'to-namespace' | 'to-container',
): (uid: number, gid: number) => { uid: number; gid: number } {
  const f = direction === 'to-namespace' ? mapId : unmapId;
  // An id the mapping lacks becomes nobody, as the kernel shows it (mapped, for the namespace side).
  const nobody = (list: IdMapping[]): number =>
    direction === 'to-namespace' ? (mapId(list, OVERFLOW_ID) ?? OVERFLOW_ID) : OVERFLOW_ID;
  return (uid, gid) => ({
    uid: f(maps.uid, uid) ?? nobody(maps.uid),
    gid: f(maps.gid, gid) ?? nobody(maps.gid),
  });
}
