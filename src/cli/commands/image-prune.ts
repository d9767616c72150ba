/** `hutch image prune`: registered under `hutch image` (image.ts imports `prune`). */
// Containers tell images and volumes when they are in use, and stop with the store.
import '../../engine/containers/open.ts';
import { pruneImages } from '../../engine/prune.ts';
import { HutchError } from '../../util/errors.ts';
import { humanSize } from '../../util/human.ts';
import type { CommandSpec, OptionSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out } from '../output.ts';
import { confirm } from '../prompt.ts';

export async function runPrune(args: Parsed): Promise<void> {
  const { opts } = args;
  const all = opts.all === true;
  const filters = (opts.filter as string[] | undefined) ?? [];
  const ctx = await contextFor(args);
  if (opts.force !== true) {
    if (!process.getBuiltinModule('node:tty').isatty(0)) {
      throw new HutchError(
        'CONFIRMATION_REQUIRED',
        'image prune asks for confirmation, and there is no terminal to ask on',
        {
          hint: 'Use -f to prune without asking.',
        },
      );
    }
    const warning = all
      ? 'WARNING! This will remove all images without at least one container associated to them.'
      : 'WARNING! This will remove all dangling images.';
    if (!(await confirm(`${warning}\nAre you sure you want to continue? [y/N] `))) {
      throw new HutchError('ABORTED', 'image prune cancelled', { hint: 'Use -f to prune without asking.' });
    }
  }
  const r = pruneImages(ctx, { all, filters });
  if (r.removed.length > 0) {
    out('Deleted Images:');
    for (const im of r.removed) {
      for (const u of im.untagged) out(`untagged: ${u}`);
      out(`deleted: ${im.id}`);
    }
    out('');
  }
  out(`Total reclaimed space: ${humanSize(r.reclaimed)}`);
}

export const PRUNE_OPTIONS: OptionSpec[] = [
  { long: 'all', short: 'a', kind: 'bool', description: 'Remove all unused images, not just dangling ones' },
  { long: 'force', short: 'f', kind: 'bool', description: 'Do not prompt for confirmation' },
  {
    long: 'filter',
    kind: 'list',
    default: [],
    valueName: 'filter',
    description: 'Provide filter values (e.g. "until=24h", "label=KEY=VALUE")',
  },
];

export const prune: CommandSpec = {
  name: 'prune',
  summary: 'Remove unused images',
  usage: '[OPTIONS]',
  maxOperands: 0,
  options: PRUNE_OPTIONS,
  run: runPrune,
};
