import { openContainers } from '../../engine/containers/open.ts';
import { startContainer } from '../../engine/containers/start.ts';
import { stopContainer } from '../../engine/containers/stop.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { eachContainer } from './each-container.ts';
import { TIME_OPTION } from './stop.ts';

export async function runRestart(args: Parsed): Promise<number> {
  const c = openContainers(await contextFor(args));
  const t = typeof args.opts.time === 'number' && args.opts.time >= 0 ? args.opts.time : undefined;
  return eachContainer(args.operands, async (ref) => {
    const rec = await stopContainer(c, ref, t);
    const started = await startContainer(c, rec.id, { kind: 'detached' });
    started.conmon.release();
  });
}

export const command: CommandSpec = {
  name: 'restart',
  summary: 'Restart one or more containers',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  options: [TIME_OPTION],
  run: runRestart,
};
