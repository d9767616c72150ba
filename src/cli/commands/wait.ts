import { openContainers } from '../../engine/containers/open.ts';
import { waitForExit } from '../../engine/containers/run.ts';
import { isRunning } from '../../engine/containers/stop.ts';
import { observedState } from '../../runtime/containers/liveness.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out } from '../output.ts';
import { eachContainer } from './each-container.ts';

export async function runWait(args: Parsed): Promise<number> {
  const c = openContainers(await contextFor(args));
  return eachContainer(
    args.operands,
    async (ref) => {
      const rec = c.store.get(ref);
      if (rec.state.status === 'created') {
        // docker waits for a created container to run and exit.
        while (c.store.read(rec.id)?.state.status === 'created') await new Promise((r) => setTimeout(r, 100));
      }
      const now = c.store.read(rec.id) ?? rec;
      const code = isRunning(c, now)
        ? await waitForExit(c, now)
        : observedState(now, c.store.exitFile(now.id)).exitCode;
      out(String(code));
    },
    false,
  );
}

export const command: CommandSpec = {
  name: 'wait',
  summary: 'Block until one or more containers stop, then print their exit codes',
  usage: 'CONTAINER [CONTAINER...]',
  run: runWait,
};
