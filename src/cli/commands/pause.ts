import { openContainers } from '../../engine/containers/open.ts';
import { pauseContainer } from '../../engine/containers/pause.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { eachContainer } from './each-container.ts';

export async function runPause(args: Parsed): Promise<number> {
  const c = openContainers(await contextFor(args));
  return eachContainer(args.operands, (ref) => {
    pauseContainer(c, ref);
  });
}

export const command: CommandSpec = {
  name: 'pause',
  summary: 'Pause all processes within one or more containers',
  usage: 'CONTAINER [CONTAINER...]',
  minOperands: 1,
  run: runPause,
};
