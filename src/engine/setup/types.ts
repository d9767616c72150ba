import type { InitName } from './init.ts';
import type { UndoAction } from './undo.ts';

/** A step of `hutch setup`: what it found, what it would change, and how. */
export interface SetupStep {
  id: string;
  title: string;
  /** ok: nothing to do; change: apply() fixes it; manual: hutch will not guess, detail says why. */
  status: 'ok' | 'change' | 'manual';
  detail: string;
  /** Unified-diff-like lines of file changes, for --dry-run. */
  diff?: string[];
  apply?: () => void;
  /** How to take the change back (setup --undo); journaled before apply runs. */
  undo?: UndoAction[];
}

export interface SetupTarget {
  user: { name: string; uid: number; gid: number; home: string };
  /** Files under /etc are read and written below this root ("/" for the real host). */
  hostRoot: string;
  /** Only on the real host are devices, cgroup mounts and /run touched. */
  live: boolean;
  /** With --storage: where the user's store goes, to be given a home fitted to its disk. */
  store?: string;
  /** With --unprivileged-port-start: the lowest port users may bind. */
  portStart?: number;
  /** With --init: the init to write service files for, instead of the one found running. */
  init?: InitName;
}
