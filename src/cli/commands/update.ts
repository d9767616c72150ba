import { openContainers } from '../../engine/containers/open.ts';
import { hasChanges, updateContainer } from '../../engine/containers/update.ts';
import type { UpdateRequest } from '../../engine/containers/update.ts';
import { HutchError } from '../../util/errors.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { LIMIT_OPTIONS, limitFlags } from './container-flags.ts';
import { eachContainer } from './each-container.ts';

export async function runUpdate(args: Parsed): Promise<number> {
  const o = args.opts;
  const req: UpdateRequest = {
    resources: limitFlags(o),
    restart: typeof o.restart === 'string' ? o.restart : undefined,
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
    ...LIMIT_OPTIONS,
    {
      long: 'restart',
      kind: 'string',
      valueName: 'string',
      description: 'Restart policy to apply when a container exits',
    },
  ],
  run: runUpdate,
};
