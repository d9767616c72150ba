import { diffContainer } from '../../engine/containers/diff.ts';
import { fromBytes } from '../../storage/archive/tar-writer.ts';
import { HutchError } from '../../util/errors.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out, printJson } from '../output.ts';

export async function runDiff(args: Parsed): Promise<void> {
  const format = typeof args.opts.format === 'string' ? args.opts.format : undefined;
  if (format !== undefined && format !== 'json') {
    throw new HutchError('BAD_FORMAT', `unknown diff format "${format}"`, {
      hint: 'Use --format json, or leave it out.',
    });
  }
  const list = diffContainer(await contextFor(args), args.operands[0]!);
  if (format === 'json') {
    // podman's shape: the paths of each kind.
    const by = (k: string): string[] => list.filter((c) => c.kind === k).map((c) => `/${fromBytes(c.path)}`);
    printJson({ changed: by('C'), added: by('A'), deleted: by('D') });
    return;
  }
  if (list.length > 0) out(list.map((c) => `${c.kind} /${fromBytes(c.path)}`).join('\n'));
}

export const command: CommandSpec = {
  name: 'diff',
  summary: "Inspect changes to files or directories on a container's filesystem",
  usage: 'CONTAINER',
  minOperands: 1,
  maxOperands: 1,
  options: [
    {
      long: 'format',
      kind: 'string',
      valueName: 'string',
      description: 'Change the output format (json)',
    },
  ],
  run: runDiff,
};
