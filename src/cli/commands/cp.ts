import { copyFiles } from '../../engine/containers/cp.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';

export async function runCp(args: Parsed): Promise<void> {
  const [from, to] = args.operands as [string, string];
  await copyFiles(await contextFor(args), from, to, {
    archive: args.opts.archive === true,
    followLink: args.opts.followLink === true,
  });
}

export const command: CommandSpec = {
  name: 'cp',
  summary: 'Copy files/folders between a container and the local filesystem',
  usage: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       hutch cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
  minOperands: 2,
  maxOperands: 2,
  options: [
    {
      long: 'archive',
      short: 'a',
      kind: 'bool',
      description: 'Archive mode (copy all uid/gid information)',
    },
    {
      long: 'follow-link',
      short: 'L',
      kind: 'bool',
      description: 'Always follow symbol link in SRC_PATH',
    },
    {
      long: 'quiet',
      short: 'q',
      kind: 'bool',
      description: 'Suppress progress output during copy (hutch prints none)',
    },
  ],
  run: runCp,
};
