import { createContainer } from '../../engine/containers/create.ts';
import { openContainers } from '../../engine/containers/open.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { err, out } from '../output.ts';
import { lineProgress } from '../progress.ts';
import { createRequest, CREATE_OPTIONS } from './container-flags.ts';

export async function runCreate(args: Parsed): Promise<void> {
  const ctx = await contextFor(args);
  const quiet = args.opts.quiet === true;
  const req = createRequest(
    args,
    quiet ? undefined : { start: (name: string) => err(`Pulling ${name}`), ...lineProgress() },
  );
  const rec = await createContainer(openContainers(ctx), req);
  out(rec.id);
}

export const command: CommandSpec = {
  name: 'create',
  summary: 'Create a new container',
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  minOperands: 1,
  stopAtOperand: true,
  options: CREATE_OPTIONS,
  run: runCreate,
};
