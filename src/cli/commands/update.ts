import { openContainers } from '../../engine/containers/open.ts';
import { hasChanges, updateContainer } from '../../engine/containers/update.ts';
import type { UpdateRequest } from '../../engine/containers/update.ts';
import { HutchError } from '../../util/errors.ts';
import type { CommandSpec, OptionSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { eachContainer } from './each-container.ts';

const s = (long: string, description: string, valueName: string, short?: string): OptionSpec => ({
  long,
  kind: 'string',
  description,
  valueName,
  ...(short ? { short } : {}),
});

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export async function runUpdate(args: Parsed): Promise<number> {
  const o = args.opts;
  const req: UpdateRequest = {
    resources: {
      memory: str(o.memory),
      memorySwap: str(o.memorySwap),
      memoryReservation: str(o.memoryReservation),
      cpus: str(o.cpus),
      cpuShares: str(o.cpuShares),
      cpuQuota: str(o.cpuQuota),
      cpuPeriod: str(o.cpuPeriod),
      cpusetCpus: str(o.cpusetCpus),
      pidsLimit: str(o.pidsLimit),
      blkioWeight: str(o.blkioWeight),
    },
    restart: str(o.restart),
  };
  // Refused before any container is looked at, once, as docker does.
  if (!hasChanges(req)) {
    throw new HutchError('BAD_FLAG', 'you must provide one or more flags when using this command', {
      hint: 'e.g. hutch update --memory 512m --cpus 1.5 CONTAINER, or --restart always.',
    });
  }
  const c = openContainers(await contextFor(args));
  return eachContainer(args.operands, (ref) => {
    updateContainer(c, ref, req);
  });
}

export const command: CommandSpec = {
  name: 'update',
  summary: 'Update configuration of one or more containers',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  minOperands: 1,
  options: [
    s('blkio-weight', 'Block IO (relative weight), between 10 and 1000, or 0 to disable', 'uint16'),
    s('cpu-period', 'Limit CPU CFS (Completely Fair Scheduler) period', 'int'),
    s('cpu-quota', 'Limit CPU CFS (Completely Fair Scheduler) quota', 'int'),
    s('cpu-shares', 'CPU shares (relative weight)', 'int', 'c'),
    s('cpus', 'Number of CPUs', 'decimal'),
    s('cpuset-cpus', 'CPUs in which to allow execution (0-3, 0,1)', 'string'),
    s('memory', 'Memory limit', 'bytes', 'm'),
    s('memory-reservation', 'Memory soft limit', 'bytes'),
    s('memory-swap', 'Swap limit equal to memory plus swap: -1 to enable unlimited swap', 'bytes'),
    s('pids-limit', 'Tune container pids limit (set -1 for unlimited)', 'int'),
    s('restart', 'Restart policy to apply when a container exits', 'string'),
  ],
  run: runUpdate,
};
