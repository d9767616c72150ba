/**
 * `pause` and `unpause`: the runtime freezes and thaws the container's
 * cgroup (the freezer), and the record says "paused" meanwhile. Both happen
 * under the container's lock, so the record never claims a state the
 * runtime was not put in.
 *
 * A rootless container without a cgroup of its own (cgroup v1 hosts, where
 * nothing can be delegated) has no freezer: the runtime cannot pause it,
 * and the error says what would make it possible.
 */
import { observedState } from '../../runtime/containers/liveness.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { HutchError, isHutchError } from '../../util/errors.ts';
import type { Containers } from './open.ts';
import { ownCgroupPath } from './stats.ts';

function noFreezer(rec: ContainerRecord, why: string): HutchError {
  return new HutchError(
    'PAUSE_UNAVAILABLE',
    `cannot pause container ${rec.name}: rootless pause needs a cgroup v2 freezer delegated to you, and ${why}`,
    {
      hint:
        'Run `hutch doctor` to see the cgroup setup. On cgroup v2, have root delegate the controllers to you ' +
        '(`sudo hutch setup --user $(id -un)`, then log in again); cgroup v1 cannot be delegated.',
    },
  );
}

function change(c: Containers, ref: string, pause: boolean): ContainerRecord {
  const found = c.store.get(ref);
  return c.store.update(found.id, (rec) => {
    const s = observedState(rec, c.store.exitFile(rec.id));
    if (s.status !== 'running' && s.status !== 'paused') {
      throw new HutchError('CONTAINER_NOT_RUNNING', `container ${rec.name} is not running`, {
        hint: `Start it first: hutch start ${rec.name}`,
      });
    }
    if (pause && s.status === 'paused') {
      throw new HutchError('ALREADY_PAUSED', `container ${rec.name} is already paused`, {
        hint: `Unpause it with \`hutch unpause ${rec.name}\`.`,
      });
    }
    if (!pause && s.status !== 'paused') {
      throw new HutchError('NOT_PAUSED', `container ${rec.name} is not paused`);
    }
    const rootless = c.ctx.ident.rootless;
    if (rootless && !ownCgroupPath(c, rec)) throw noFreezer(rec, 'this container has no cgroup of its own');
    const runtime = c.runtime(rec.runtime);
    try {
      if (pause) runtime.pause(rec.id);
      else runtime.resume(rec.id);
    } catch (e) {
      if (rootless && pause && isHutchError(e)) throw noFreezer(rec, `the runtime refused: ${e.message}`);
      throw e;
    }
    rec.state.status = pause ? 'paused' : 'running';
  });
}

export function pauseContainer(c: Containers, ref: string): ContainerRecord {
  return change(c, ref, true);
}

export function unpauseContainer(c: Containers, ref: string): ContainerRecord {
  return change(c, ref, false);
}
