/**
 * Who hutch runs as. Inside the user namespace every process is uid 0, so
 * "am I rootless?" is answered from the id map, not from getuid(): the map
 * line for uid 0 names the host user it stands for.
 */
import { readFileSync } from 'node:fs';
import { rangesOf } from '../util/idmap.ts';
import type { IdRange } from '../util/idmap.ts';

export interface Identity {
  /** The user hutch acts for, as the host sees it. */
  uid: number;
  gid: number;
  /** Not host root: the rootless paths and namespace apply. */
  rootless: boolean;
  /** This process already runs inside a user namespace hutch joined or built. */
  inUserNamespace: boolean;
}

/** The host id that `inside` stands for in a /proc/PID/[ug]id_map text. */
export function outsideIdOf(mapText: string, inside: number): number | undefined {
  for (const line of mapText.split('\n')) {
    const [a, b, c] = line.trim().split(/\s+/).map(Number);
    if (a === undefined || b === undefined || c === undefined || Number.isNaN(c)) continue;
    if (inside >= a && inside < a + c) return b + (inside - a);
  }
  return undefined;
}

export function isIdentityMap(mapText: string): boolean {
  return /^\s*0\s+0\s+4294967295\s*$/.test(mapText);
}

let cached: Identity | undefined;

export function identity(): Identity {
  if (cached) return cached;
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  let uidMap = '';
  let gidMap = '';
  try {
    uidMap = readFileSync('/proc/self/uid_map', 'utf8');
    gidMap = readFileSync('/proc/self/gid_map', 'utf8');
  } catch {
    // No /proc: treat as the initial namespace.
  }
  const inUserNamespace = uidMap !== '' && !isIdentityMap(uidMap);
  const hostUid = inUserNamespace ? (outsideIdOf(uidMap, uid) ?? uid) : uid;
  const hostGid = inUserNamespace ? (outsideIdOf(gidMap, gid) ?? gid) : gid;
  cached = { uid: hostUid, gid: hostGid, rootless: hostUid !== 0, inUserNamespace };
  return cached;
}

/** The highest uid and gid that exist in this process's user namespace. */
export function namespaceIdLimits(): { maxUid: number; maxGid: number } {
  const max = (file: string): number => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return 0;
    }
    let top = 0;
    for (const line of text.split('\n')) {
      const [inside, , count] = line.trim().split(/\s+/).map(Number);
      if (inside !== undefined && count !== undefined && !Number.isNaN(count))
        top = Math.max(top, inside + count - 1);
    }
    return top;
  };
  return { maxUid: max('/proc/self/uid_map'), maxGid: max('/proc/self/gid_map') };
}

/** This namespace's own id ranges (the inside column of its uid_map and gid_map). */
export function namespaceRanges(): { uid: IdRange[]; gid: IdRange[] } {
  const read = (file: string): IdRange[] => {
    try {
      return rangesOf(readFileSync(file, 'utf8'));
    } catch {
      return [];
    }
  };
  return { uid: read('/proc/self/uid_map'), gid: read('/proc/self/gid_map') };
}
