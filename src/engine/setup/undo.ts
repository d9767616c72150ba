/**
 * `hutch setup --undo`: every change setup makes is written down first, as
 * the way to take it back, in a journal per user
 * (`/var/lib/hutch/setup/USER.json` below the host root). --undo takes the
 * journal's changes back, newest first, and removes the journal; what was
 * there before setup (an admin's own lines, files setup replaced) comes
 * back as it was. Data is never deleted: a store's btrfs subvolume or ZFS
 * dataset is unmounted and taken out of fstab, and left for the admin.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { readIfExists, writeFileAtomic } from '../../util/fs-atomic.ts';
import type { SetupStep, SetupTarget } from './types.ts';

export type UndoAction =
  /** A line setup appended to a file: removed again (the first identical line from the end). */
  | { kind: 'line'; path: string; line: string }
  /** A file setup wrote: its earlier content put back (with its mode), or the file removed if there was none. */
  | { kind: 'file'; path: string; previous: string | null; mode?: number }
  /** A directory setup made: removed again if it is empty. */
  | { kind: 'dir'; path: string }
  /** A symbolic link setup made (enabling a service): removed if it still points where setup pointed it. */
  | { kind: 'link'; path: string; target: string }
  /** The cgroup subtree setup delegated (live only): its empty cgroups removed. */
  | { kind: 'cgroup'; path: string }
  /** A device node's or a sysctl file's earlier mode or value. */
  | { kind: 'mode'; path: string; previous: number }
  | { kind: 'sysctl'; path: string; previous: string }
  /** A mount setup made (live only). */
  | { kind: 'mount'; path: string }
  /** linger enabled with loginctl (live only). */
  | { kind: 'linger'; user: string };

export function journalPath(t: SetupTarget): string {
  return join(t.hostRoot, 'var/lib/hutch/setup', `${t.user.name}.json`);
}

export function readJournal(t: SetupTarget): UndoAction[] {
  const text = readIfExists(journalPath(t));
  return text ? (JSON.parse(text) as UndoAction[]) : [];
}

/** Adds a step's undo actions to the journal, before the step runs (a killed setup can still be undone). */
export function journal(t: SetupTarget, actions: UndoAction[]): void {
  if (actions.length === 0) return;
  const file = journalPath(t);
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileAtomic(file, JSON.stringify([...readJournal(t), ...actions], null, 1) + '\n', 0o600);
}

/** What a file holds now, for a 'file' action: null when it does not exist. */
export function previousContent(path: string): string | null {
  return readIfExists(path) ?? null;
}

function describe(a: UndoAction): string {
  switch (a.kind) {
    case 'line':
      return `${a.path}: -${a.line}`;
    case 'file':
      return a.previous === null ? `remove ${a.path}` : `restore ${a.path} as it was`;
    case 'mode':
      return `chmod ${a.previous.toString(8)} ${a.path}`;
    case 'sysctl':
      return `${a.path} = ${a.previous}`;
    case 'mount':
      return `umount ${a.path} (its data stays)`;
    case 'linger':
      return `loginctl disable-linger ${a.user}`;
    case 'dir':
      return `rmdir ${a.path} (if empty)`;
    case 'link':
      return `remove the link ${a.path}`;
    case 'cgroup':
      return `rmdir ${a.path} and its empty children`;
  }
}

/** rmdir that leaves a directory someone has put something in since (or removed already). */
function rmdirIfEmpty(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // Not empty, or gone: either way it is no longer setup's to remove.
  }
}

function takeBack(a: UndoAction): void {
  switch (a.kind) {
    case 'line': {
      const lines = (readIfExists(a.path) ?? '').split('\n');
      const at = lines.lastIndexOf(a.line);
      if (at < 0) return; // removed by hand meanwhile
      lines.splice(at, 1);
      if (at > 0 && lines[at - 1]?.startsWith('# hutch setup')) lines.splice(at - 1, 1);
      writeFileAtomic(a.path, lines.join('\n'), 0o644);
      return;
    }
    case 'file':
      if (a.previous === null) rmSync(a.path, { force: true });
      else writeFileAtomic(a.path, a.previous, a.mode ?? 0o644);
      return;
    case 'dir':
      rmdirIfEmpty(a.path);
      return;
    case 'link': {
      let now: string | undefined;
      try {
        now = readlinkSync(a.path);
      } catch {
        now = undefined;
      }
      if (now === a.target) rmSync(a.path, { force: true });
      return;
    }
    case 'cgroup':
      // Leaves first: a cgroup with children cannot go. One still holding processes stays.
      for (const leaf of readdirSafe(a.path)) rmdirIfEmpty(join(a.path, leaf));
      rmdirIfEmpty(a.path);
      return;
    case 'mode':
      chmodSync(a.path, a.previous);
      return;
    case 'sysctl':
      writeFileSync(a.path, a.previous);
      return;
    case 'mount':
      spawnSync('umount', [a.path]);
      return;
    case 'linger':
      spawnSync('loginctl', ['disable-linger', a.user]);
      return;
  }
}

/** The child cgroups of a cgroup (its directories; the rest are interface files). */
function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path).filter((n) => statSync(join(path, n)).isDirectory());
  } catch {
    return [];
  }
}

/** The journal as steps: newest change first; applying them empties the journal. */
export function undoSteps(t: SetupTarget): SetupStep[] {
  const actions = readJournal(t).reverse();
  if (actions.length === 0) {
    return [
      {
        id: 'undo',
        title: 'undo',
        status: 'ok',
        detail: `setup changed nothing for ${t.user.name} to take back`,
      },
    ];
  }
  return [
    ...actions.map((a, i): SetupStep => ({
      id: `undo:${i}`,
      title: 'undo',
      status: 'change',
      detail: describe(a),
      apply: () => takeBack(a),
    })),
    {
      id: 'undo:journal',
      title: 'undo',
      status: 'change',
      detail: `forget ${journalPath(t)}`,
      apply: () => rmSync(journalPath(t), { force: true }),
    },
  ];
}
