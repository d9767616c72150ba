import { inspectImage, resolveImage } from '../../engine/images.ts';
import { openImageStore } from '../../engine/images-store.ts';
import { HutchError } from '../../util/errors.ts';
import { inspectContainer } from '../../engine/containers/inspect.ts';
import { openContainers } from '../../engine/containers/open.ts';
import { noSuchContainer } from '../../runtime/containers/store.ts';
import { FORMAT_TEMPLATE } from '../args/common.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { printInspected, reportError } from '../output.ts';

/** `inspect` of images (containers join when they exist): Docker's JSON, or a template per object. */
export async function runInspectImages(args: Parsed): Promise<number> {
  const ctx = await contextFor(args);
  const type = typeof args.opts.type === 'string' ? args.opts.type : undefined;
  if (type !== undefined && type !== 'image' && type !== 'container') {
    throw new HutchError('BAD_FLAG', `--type ${type}: must be container or image`);
  }
  const c = type === 'image' ? undefined : openContainers(ctx);
  const s = c?.images ?? openImageStore(ctx);
  const found: Record<string, unknown>[] = [];
  let code = 0;
  for (const name of args.operands) {
    try {
      // Containers first, as docker does when a name could be either.
      const rec = c?.store.find(name);
      if (rec) {
        found.push(inspectContainer(c!, rec));
        continue;
      }
      if (type === 'container') throw noSuchContainer(name);
      found.push(inspectImage(s, resolveImage(s, name)));
    } catch (e) {
      if (!(e instanceof HutchError)) throw e;
      code = reportError(e);
    }
  }
  await printInspected(found, typeof args.opts.format === 'string' ? args.opts.format : undefined);
  return code;
}

export const command: CommandSpec = {
  name: 'inspect',
  summary: 'Display detailed information on containers and images',
  usage: '[OPTIONS] NAME [NAME...]',
  minOperands: 1,
  options: [
    FORMAT_TEMPLATE,
    { long: 'type', kind: 'string', description: 'Only inspect objects of this type (container or image)' },
  ],
  run: runInspectImages,
};
