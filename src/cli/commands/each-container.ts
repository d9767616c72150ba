/** docker's way with several containers: act on each, report each failure, exit 1 if any failed. */
import { HutchError, isHutchError } from '../../util/errors.ts';
import { err, out } from '../output.ts';

export async function eachContainer(
  refs: string[],
  fn: (ref: string) => Promise<void> | void,
  print = true,
): Promise<number> {
  if (refs.length === 0) {
    throw new HutchError('BAD_FLAG', 'requires at least 1 container', {
      hint: 'Name one or more containers (or IDs).',
    });
  }
  let failed = 0;
  for (const ref of refs) {
    try {
      await fn(ref);
      if (print) out(ref);
    } catch (e) {
      if (refs.length === 1) throw e;
      failed++;
      err(`Error: ${isHutchError(e) ? e.message : String(e)}`);
    }
  }
  return failed ? 1 : 0;
}
