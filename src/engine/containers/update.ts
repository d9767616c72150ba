/**
 * `hutch update`: new limits or a new restart policy for a container. The
 * limits are checked as `run` checks them (docker's units and rules, and a
 * refusal where the cgroup controllers are missing), applied to a running
 * container through the runtime, and kept in the record, so that the next
 * start builds its spec with them. Everything happens under the
 * container's lock: the record changes only once the runtime took the
 * limits.
 */
import { observedState } from '../../runtime/containers/liveness.ts';
import type { RunOptions } from '../../runtime/containers/options.ts';
import type { ContainerRecord, HostConfig } from '../../runtime/containers/types.ts';
import {
  availableControllers,
  buildResources,
  checkControllers,
  parseBytes,
} from '../../runtime/resources.ts';
import type { OciResources } from '../../runtime/resources.ts';
import { HutchError } from '../../util/errors.ts';
import { parseRestart } from './create.ts';
import type { Containers } from './open.ts';
import { ownCgroupPath } from './stats.ts';

/** The kernel's ceiling for pid_max on 64-bit systems (4 Mi). */
const PID_MAX_LIMIT = 4 * 1024 * 1024;

export type ResourceChanges = RunOptions['resources'];

export interface UpdateRequest {
  /** Only the flags given; the others keep their values. */
  resources: ResourceChanges;
  restart: string | undefined;
}

export function hasChanges(req: UpdateRequest): boolean {
  return req.restart !== undefined || Object.values(req.resources).some((v) => v !== undefined);
}

/** inspect's HostConfig numbers for a set of limits, as `create` records them. */
function limitsForInspect(
  r: ResourceChanges,
): Pick<HostConfig, 'memory' | 'memorySwap' | 'nanoCpus' | 'cpuShares' | 'pidsLimit'> {
  return {
    memory: r.memory ? parseBytes(r.memory, '--memory') : 0,
    memorySwap: r.memorySwap && r.memorySwap !== '-1' ? parseBytes(r.memorySwap, '--memory-swap') : 0,
    nanoCpus: r.cpus ? Math.round(Number(r.cpus) * 1e9) : 0,
    cpuShares: Number(r.cpuShares ?? 0),
    pidsLimit: Number(r.pidsLimit ?? 0),
  };
}

/** The flags given, as the user typed them: "--memory, --cpus". */
function flagNames(given: ResourceChanges): string {
  return Object.keys(given)
    .map((k) => `--${k.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`)}`)
    .join(', ');
}

export function updateContainer(c: Containers, ref: string, req: UpdateRequest): ContainerRecord {
  if (!hasChanges(req)) {
    throw new HutchError('BAD_FLAG', 'you must provide one or more flags when using this command', {
      hint: 'e.g. hutch update --memory 512m --cpus 1.5 CONTAINER, or --restart always.',
    });
  }
  const restart = req.restart === undefined ? undefined : parseRestart(req.restart);
  const found = c.store.get(ref);
  return c.store.update(found.id, (rec) => {
    if (restart && restart.name !== 'no' && rec.hostConfig.autoRemove) {
      throw new HutchError(
        'BAD_FLAG',
        `the restart policy of ${rec.name} cannot be updated because it is removed when it exits (--rm)`,
      );
    }
    const given = Object.fromEntries(
      Object.entries(req.resources).filter(([, v]) => v !== undefined),
    ) as ResourceChanges;
    const changing = Object.keys(given).length > 0;
    const merged: ResourceChanges = { ...rec.options.resources, ...given };
    if (changing) {
      const built = buildResources(merged);
      const rootless = c.ctx.ident.rootless;
      if (built.needs.size > 0)
        checkControllers(built.needs, availableControllers(rootless), built.requestedBy);
      const s = observedState(rec, c.store.exitFile(rec.id));
      if (s.status === 'running' || s.status === 'paused') {
        const resources: OciResources = { ...built.resources };
        // --pids-limit 0 or -1 lifts a limit the container had. runc writes -1 as "max", but
        // crun (1.8) writes it as is, which the kernel refuses; PID_MAX_LIMIT, the most pids a
        // kernel can ever have, is accepted by both and can never be reached.
        if (
          given.pidsLimit !== undefined &&
          !resources.pids &&
          Number(rec.options.resources.pidsLimit ?? 0) > 0
        )
          resources.pids = { limit: PID_MAX_LIMIT };
        if (Object.keys(resources).length > 0) {
          if (rootless && !ownCgroupPath(c, rec)) {
            throw new HutchError(
              'LIMITS_UNAVAILABLE',
              `cannot apply ${flagNames(given)} to ${rec.name} while it runs: it was started without a cgroup of its own`,
              { hint: `Stop it, update it, and start it again: \`hutch stop ${rec.name}\` first.` },
            );
          }
          c.runtime(rec.runtime).update(rec.id, JSON.stringify(resources));
        }
      }
      rec.options.resources = merged;
      rec.hostConfig = { ...rec.hostConfig, ...limitsForInspect(merged) };
    }
    if (restart) rec.hostConfig.restartPolicy = restart;
  });
}
