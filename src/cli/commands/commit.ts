import { commitContainer } from '../../engine/containers/commit.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out } from '../output.ts';

export async function runCommit(args: Parsed): Promise<void> {
  const { opts } = args;
  const [ref, reference] = args.operands as [string, string | undefined];
  const image = await commitContainer(await contextFor(args), ref, reference, {
    author: typeof opts.author === 'string' ? opts.author : undefined,
    message: typeof opts.message === 'string' ? opts.message : undefined,
    changes: (opts.change as string[] | undefined) ?? [],
    pause: opts.pause !== false,
  });
  out(`sha256:${image.id}`);
}

export const command: CommandSpec = {
  name: 'commit',
  summary: "Create a new image from a container's changes",
  usage: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
  minOperands: 1,
  maxOperands: 2,
  options: [
    {
      long: 'author',
      short: 'a',
      kind: 'string',
      valueName: 'string',
      description: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")',
    },
    {
      long: 'change',
      short: 'c',
      kind: 'list',
      default: [],
      description: 'Apply Dockerfile instruction to the created image',
    },
    {
      long: 'message',
      short: 'm',
      kind: 'string',
      valueName: 'string',
      description: 'Commit message',
    },
    {
      long: 'pause',
      short: 'p',
      kind: 'bool',
      default: true,
      description: 'Pause container during commit',
    },
  ],
  run: runCommit,
};
