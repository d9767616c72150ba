/**
 * cgroup v2 delegation without systemd: the kernel's own model (cgroup-v2
 * "Delegation"). Root makes `/sys/fs/cgroup/hutch/user-UID`, enables the
 * controllers hutch's limits need (cpu cpuset io memory pids, as the kernel
 * offers them) in `cgroup.subtree_control` of every cgroup above it and of
 * the subtree itself, and gives the user the directory and its
 * cgroup.procs, cgroup.subtree_control and cgroup.threads. hutch then puts
 * each container in `<subtree>/hutch-<id>` (host/cgroups.ts).
 *
 * A process may move only between cgroups below one whose cgroup.procs the
 * mover may write, so the user's processes must start inside the subtree:
 * the boot service and the PAM hook put them there (boot-script.ts). The
 * subtree is runtime state, gone at reboot: this step makes it now, the
 * boot script at every boot and login.
 */
import { chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { delegatedSubtree } from '../../host/cgroups.ts';
import { log } from '../../util/log.ts';
import { readIfExists } from '../../util/fs-atomic.ts';
import { DELEGATED } from './systemd.ts';
import type { SetupStep, SetupTarget } from './types.ts';

const FILES = ['cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'];

/** The words of a cgroup interface file; a `+` in front (as written to it) is dropped. */
function words(path: string): string[] {
  return (readIfExists(path) ?? '')
    .split(/\s+/)
    .filter((w) => w !== '')
    .map((w) => w.replace(/^\+/, ''));
}

function ownedBy(path: string, uid: number): boolean {
  try {
    return statSync(path).uid === uid;
  } catch {
    return false;
  }
}

export function cgroupSubtreeStep(t: SetupTarget): SetupStep {
  const root = join(t.hostRoot, 'sys/fs/cgroup');
  const rel = delegatedSubtree(t.user.uid);
  const sub = join(root, rel);
  const parent = join(sub, '..');
  const chain = [root, parent, sub];
  const wanted = DELEGATED.filter((c) => words(join(root, 'cgroup.controllers')).includes(c));
  const owned = [sub, ...FILES.map((f) => join(sub, f))];
  const lacking = chain.map((d) =>
    wanted.filter((c) => !words(join(d, 'cgroup.subtree_control')).includes(c)),
  );
  const notOwned = owned.filter((p) => !ownedBy(p, t.user.uid));
  const base = { id: 'cgroup:subtree', title: 'cgroup delegation' } as const;
  if (lacking.every((l) => l.length === 0) && notOwned.length === 0) {
    return {
      ...base,
      status: 'ok',
      detail: `${sub} is ${t.user.name}'s, with ${wanted.join(', ') || 'no controller the kernel offers'}`,
    };
  }
  return {
    ...base,
    status: 'change',
    detail: `systemd is not the init: delegate ${sub} to ${t.user.name} with ${wanted.join(', ')}, so limits are enforced rootless (made again at every boot and login by the boot script; takes effect at ${t.user.name}'s next login)`,
    diff: [
      ...(existsSync(sub) ? [] : [`mkdir -p ${sub}`]),
      ...chain.flatMap((d, i) =>
        (lacking[i] ?? []).length > 0
          ? [
              `echo '${(lacking[i] ?? []).map((c) => `+${c}`).join(' ')}' > ${join(d, 'cgroup.subtree_control')}`,
            ]
          : [],
      ),
      ...(notOwned.length > 0 ? [`chown ${t.user.uid}:${t.user.gid} ${notOwned.join(' ')}`] : []),
    ],
    // The controllers stay enabled above: other cgroups may use them by now.
    undo: [
      { kind: 'cgroup', path: parent },
      { kind: 'cgroup', path: sub },
    ],
    apply: () => {
      mkdirSync(sub, { recursive: true });
      // The kernel makes a cgroup's interface files; in a host root (tests, offline roots) they are made here.
      if (!t.live) for (const f of FILES) if (!existsSync(join(sub, f))) writeFileSync(join(sub, f), '');
      chain.forEach((d, i) => {
        for (const c of lacking[i] ?? []) {
          try {
            // One controller per write: the kernel refuses a whole write for one it cannot enable.
            writeFileSync(join(d, 'cgroup.subtree_control'), `+${c}`, { flag: t.live ? 'w' : 'a' });
            if (!t.live) writeFileSync(join(d, 'cgroup.subtree_control'), ' ', { flag: 'a' });
          } catch (e) {
            log.warn(`enabling ${c} in ${d}: ${(e as Error).message}; limits needing it stay refused`);
          }
        }
      });
      for (const p of owned) chownSync(p, t.user.uid, t.user.gid);
    },
  };
}
