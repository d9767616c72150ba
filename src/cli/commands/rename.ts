import { openContainers } from '../../engine/containers/open.ts';
import { NAME_PATTERN } from '../../runtime/containers/store.ts';
import { HutchError } from '../../util/errors.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';

export async function runRename(args: Parsed): Promise<void> {
  const [ref, name] = args.operands as [string, string];
  if (!NAME_PATTERN.test(name)) {
    throw new HutchError('BAD_FLAG', `invalid container name "${name}"`, {
      hint: 'Only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed.',
    });
  }
  const c = openContainers(await contextFor(args));
  const rec = c.store.get(ref);
  if (rec.name === name)
    throw new HutchError('BAD_FLAG', `renaming a container with the same name as its current name`);
  c.store.rename(rec.id, name);
}

export const command: CommandSpec = {
  name: 'rename',
  summary: 'Rename a container',
  usage: 'CONTAINER NEW_NAME',
  minOperands: 2,
  maxOperands: 2,
  run: runRename,
};
