/**
 * One setup step made of whole files and symbolic links (service files and
 * the links that enable them): it is ok when every file holds what setup
 * would write and every link points where it would point; otherwise the
 * plan shows each file's changed lines and each link to make. Before
 * applying, the journal gets each file's earlier content and mode, each
 * link and each directory setup makes, so --undo puts back exactly what was
 * there. Files are written to a temporary name and renamed.
 */
import { existsSync, lchownSync, mkdirSync, readlinkSync, statSync, symlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { lstatIfExists, readIfExists, writeFileAtomic } from '../../util/fs-atomic.ts';
import type { SetupStep } from './types.ts';
import type { UndoAction } from './undo.ts';

export interface Owner {
  uid: number;
  gid: number;
}

export interface WantedFile {
  /** Where it goes, below the host root. */
  path: string;
  content: string;
  mode: number;
  /** Files in the user's home are the user's (and so are directories setup makes for them). */
  owner?: Owner;
}

export interface WantedLink {
  path: string;
  /** As the booted host sees it (no host root in front). */
  target: string;
  owner?: Owner;
}

export interface FilesStepSpec {
  id: string;
  title: string;
  /** What the step is for, said when something is to change. */
  doing: string;
  /** What is in place, said when nothing is. */
  done: string;
  files: WantedFile[];
  links?: WantedLink[];
}

/** The lines that differ, as `path: -old` and `path: +new`, around the common head and tail. */
export function diffLines(path: string, before: string | null, after: string): string[] {
  const a = before === null ? [] : before.replace(/\n$/, '').split('\n');
  const b = after.replace(/\n$/, '').split('\n');
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++;
  return [
    ...a.slice(head, a.length - tail).map((l) => `${path}: -${l}`),
    ...b.slice(head, b.length - tail).map((l) => `${path}: +${l}`),
  ];
}

function modeOf(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o7777;
  } catch {
    return undefined;
  }
}

function linkTarget(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** The directories above `path` that do not exist yet, outermost first. */
function missingDirs(path: string): string[] {
  const out: string[] = [];
  for (let d = dirname(path); !existsSync(d) && d !== dirname(d); d = dirname(d)) out.unshift(d);
  return out;
}

export function filesStep(spec: FilesStepSpec): SetupStep {
  const links = spec.links ?? [];
  const files = spec.files.filter((f) => readIfExists(f.path) !== f.content || modeOf(f.path) !== f.mode);
  const foreign = links.filter((l) => lstatIfExists(l.path) !== undefined && linkTarget(l.path) !== l.target);
  const todoLinks = links.filter((l) => lstatIfExists(l.path) === undefined);
  const base = { id: spec.id, title: spec.title };
  if (foreign.length > 0) {
    return {
      ...base,
      status: 'manual',
      detail: `${foreign.map((l) => l.path).join(', ')} exists and is not the link to ${foreign.map((l) => l.target).join(', ')} that setup makes; hutch will not replace it. Remove it if it is not needed, then run setup again.`,
    };
  }
  if (files.length === 0 && todoLinks.length === 0) return { ...base, status: 'ok', detail: spec.done };
  // Each directory once, with the owner of the first file or link that needs it.
  const dirs = new Map<string, Owner | undefined>();
  for (const x of [...files, ...todoLinks])
    for (const d of missingDirs(x.path)) if (!dirs.has(d)) dirs.set(d, x.owner);
  const undo: UndoAction[] = [
    ...[...dirs.keys()].map((path): UndoAction => ({ kind: 'dir', path })),
    ...files.map((f): UndoAction => {
      const previous = readIfExists(f.path) ?? null;
      const mode = modeOf(f.path);
      return {
        kind: 'file',
        path: f.path,
        previous,
        ...(previous !== null && mode !== undefined ? { mode } : {}),
      };
    }),
    ...todoLinks.map((l): UndoAction => ({ kind: 'link', path: l.path, target: l.target })),
  ];
  return {
    ...base,
    status: 'change',
    detail: spec.doing,
    diff: [
      ...files.flatMap((f) => {
        const lines = diffLines(f.path, readIfExists(f.path) ?? null, f.content);
        const mode = modeOf(f.path);
        return lines.length === 0 && mode !== f.mode ? [`chmod ${f.mode.toString(8)} ${f.path}`] : lines;
      }),
      ...todoLinks.map((l) => `ln -s ${l.target} ${l.path}`),
    ],
    undo,
    apply: () => {
      // The modes setup writes are 0644 and 0755: under umask 022 they come out exact, with no chmod
      // after the fact (which, in a user's home, could follow a link the user put there meanwhile).
      const umask = process.umask(0o022);
      try {
        for (const [d, owner] of dirs) {
          mkdirSync(d, { mode: 0o755 });
          // lchown throughout, for the same reason.
          if (owner) lchownSync(d, owner.uid, owner.gid);
        }
        for (const f of files) {
          writeFileAtomic(f.path, f.content, f.mode);
          if (f.owner) lchownSync(f.path, f.owner.uid, f.owner.gid);
        }
        for (const l of todoLinks) {
          symlinkSync(l.target, l.path);
          if (l.owner) lchownSync(l.path, l.owner.uid, l.owner.gid);
        }
      } finally {
        process.umask(umask);
      }
    },
  };
}
