import { openContainers } from '../../engine/containers/open.ts';
import { forceRemove, removeContainer } from '../../engine/containers/remove.ts';
import { noSuchContainer } from '../../runtime/containers/store.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { eachContainer } from './each-container.ts';

export async function runRm(args: Parsed): Promise<number> {
  const c = openContainers(await contextFor(args));
  const force = args.opts.force === true;
  const volumes = args.opts.volumes === true;
  return eachContainer(args.operands, async (ref) => {
    if (force) {
      // docker rm -f of a missing container succeeds quietly.
      await forceRemove(c, ref, volumes);
      return;
    }
    const rec = c.store.get(ref);
    if (!removeContainer(c, rec.id, { force, volumes })) throw noSuchContainer(ref);
  });
}

export const command: CommandSpec = {
  name: 'rm',
  summary: 'Remove one or more containers',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  options: [
    {
      long: 'force',
      short: 'f',
      kind: 'bool',
      description: 'Force the removal of a running container (uses SIGKILL)',
    },
    {
      long: 'volumes',
      short: 'v',
      kind: 'bool',
      description: 'Remove anonymous volumes associated with the container',
    },
  ],
  run: runRm,
};
