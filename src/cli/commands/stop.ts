import { openContainers } from '../../engine/containers/open.ts';
import { stopContainer } from '../../engine/containers/stop.ts';
import { views } from '../../engine/containers/list.ts';
import type { CommandSpec, OptionSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { eachContainer } from './each-container.ts';

export async function runStop(args: Parsed): Promise<number> {
  const c = openContainers(await contextFor(args));
  const t = typeof args.opts.time === 'number' && args.opts.time >= 0 ? args.opts.time : undefined;
  const refs =
    args.opts.all === true
      ? views(c)
          .filter((v) => v.state.status === 'running' || v.state.status === 'paused')
          .map((v) => v.rec.id)
      : args.operands;
  return eachContainer(refs, async (ref) => {
    await stopContainer(c, ref, t);
  });
}

/** -t: stop's grace period, shared with restart. */
export const TIME_OPTION: OptionSpec = {
  long: 'time',
  short: 't',
  kind: 'int',
  default: -1,
  description: 'Seconds to wait before killing the container',
};

export const command: CommandSpec = {
  name: 'stop',
  summary: 'Stop one or more running containers',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  options: [
    TIME_OPTION,
    { long: 'all', short: 'a', kind: 'bool', description: 'Stop all running containers' },
  ],
  run: runStop,
};
