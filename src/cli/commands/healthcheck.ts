import { checkAndRecord } from '../../engine/containers/health.ts';
import { openContainers } from '../../engine/containers/open.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out } from '../output.ts';

/** `hutch healthcheck run NAME`: one check now, recorded; exit 0 healthy, 1 not (podman's command). */
const run: CommandSpec = {
  name: 'run',
  summary: 'Run the container healthcheck once',
  usage: 'CONTAINER',
  minOperands: 1,
  maxOperands: 1,
  run: async (args: Parsed) => {
    const c = openContainers(await contextFor(args));
    const h = await checkAndRecord(c, args.operands[0]!);
    const last = h.log.at(-1);
    if (last?.exitCode === 0) return 0;
    out(h.status === 'unhealthy' ? 'unhealthy' : 'unhealthy (not yet counted: start period)');
    return 1;
  },
};

export const command: CommandSpec = {
  name: 'healthcheck',
  summary: 'Manage healthchecks of containers',
  subcommands: [run],
};
