// Containers tell images and volumes when they are in use, and stop with the store.
import '../../engine/containers/open.ts';
import { removeImages } from '../../engine/images.ts';
import type { CommandSpec, OptionSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out, reportErrors } from '../output.ts';

export async function runRmi(args: Parsed): Promise<number> {
  const { results, errors } = removeImages(await contextFor(args), args.operands, args.opts.force === true);
  for (const u of results.untagged) out(`Untagged: ${u}`);
  for (const d of results.deleted) out(`Deleted: ${d}`);
  return reportErrors(errors);
}

export const RMI_OPTIONS: OptionSpec[] = [
  { long: 'force', short: 'f', kind: 'bool', description: 'Force removal of the image' },
];

export const command: CommandSpec = {
  name: 'rmi',
  summary: 'Remove one or more images',
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  minOperands: 1,
  options: RMI_OPTIONS,
  run: runRmi,
};
