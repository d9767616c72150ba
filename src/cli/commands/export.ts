import { exportContainer } from '../../engine/containers/export.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';

export async function runExport(args: Parsed): Promise<void> {
  const output = typeof args.opts.output === 'string' ? args.opts.output : undefined;
  await exportContainer(await contextFor(args), args.operands[0]!, { output });
}

export const command: CommandSpec = {
  name: 'export',
  summary: "Export a container's filesystem as a tar archive",
  usage: '[OPTIONS] CONTAINER',
  minOperands: 1,
  maxOperands: 1,
  options: [
    {
      long: 'output',
      short: 'o',
      kind: 'string',
      valueName: 'string',
      description: 'Write to a file, instead of STDOUT',
    },
  ],
  run: runExport,
};
