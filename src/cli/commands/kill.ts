import { openContainers } from '../../engine/containers/open.ts';
import { killContainer } from '../../engine/containers/stop.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { eachContainer } from './each-container.ts';

export async function runKill(args: Parsed): Promise<number> {
  const c = openContainers(await contextFor(args));
  const sig = typeof args.opts.signal === 'string' ? args.opts.signal : 'KILL';
  return eachContainer(args.operands, (ref) => {
    killContainer(c, ref, sig);
  });
}

export const command: CommandSpec = {
  name: 'kill',
  summary: 'Kill one or more running containers',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  options: [
    {
      long: 'signal',
      short: 's',
      kind: 'string',
      description: 'Signal to send to the container (default KILL)',
    },
  ],
  run: runKill,
};
