import { openContainers } from '../../engine/containers/open.ts';
import { runForeground } from '../../engine/containers/run.ts';
import { startContainer } from '../../engine/containers/start.ts';
import { isRunning } from '../../engine/containers/stop.ts';
import { HutchError, isHutchError } from '../../util/errors.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { err, out, writeRaw } from '../output.ts';
import { parseDetachKeys } from './run.ts';
import { startAllIds } from '../../engine/containers/start-all.ts';

export async function runStart(args: Parsed): Promise<number> {
  const o = args.opts;
  const c = openContainers(await contextFor(args));
  let refs = args.operands;
  if (o.all === true) {
    refs = startAllIds(c, (o.filter as string[]) ?? []);
  } else if (refs.length === 0) {
    throw new HutchError('BAD_FLAG', '"start" requires at least 1 argument', {
      hint: 'hutch start [OPTIONS] CONTAINER [CONTAINER...]',
    });
  }
  if (o.attach === true) {
    if (refs.length !== 1)
      throw new HutchError('BAD_FLAG', 'you cannot start and attach multiple containers at once');
    const rec = c.store.get(refs[0]!);
    const r = await runForeground(
      c,
      rec,
      {
        stdin: o.interactive === true,
        write: writeRaw,
        sigProxy: true,
        detachKeys: rec.config.tty
          ? parseDetachKeys(typeof o.detachKeys === 'string' ? o.detachKeys : undefined)
          : undefined,
      },
      undefined,
    );
    return r.exitCode;
  }
  let failed = 0;
  for (const ref of refs) {
    try {
      const rec = c.store.get(ref);
      if (isRunning(c, rec)) {
        out(o.all === true ? c.store.get(ref).name : ref);
        continue;
      }
      const started = await startContainer(c, rec.id, { kind: 'detached' });
      started.conmon.release();
      out(o.all === true ? c.store.get(ref).name : ref);
    } catch (e) {
      if (refs.length === 1) throw e;
      failed++;
      err(`Error: ${isHutchError(e) ? e.message : String(e)}`);
    }
  }
  return failed ? 125 : 0;
}

export const command: CommandSpec = {
  name: 'start',
  summary: 'Start one or more stopped containers',
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  options: [
    { long: 'attach', short: 'a', kind: 'bool', description: 'Attach STDOUT/STDERR and forward signals' },
    { long: 'interactive', short: 'i', kind: 'bool', description: "Attach container's STDIN" },
    {
      long: 'detach-keys',
      kind: 'string',
      description: 'Override the key sequence for detaching a container',
    },
    { long: 'all', kind: 'bool', description: 'Start all containers (with --filter: those matching)' },
    {
      long: 'filter',
      kind: 'list',
      default: [],
      description:
        'With --all: start only containers matching these filters (restart-policy=unless-stopped passes over containers you stopped, as docker does at boot)',
    },
  ],
  run: runStart,
};
