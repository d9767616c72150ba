import { createContainer } from '../../engine/containers/create.ts';
import { openContainers } from '../../engine/containers/open.ts';
import { forceRemove } from '../../engine/containers/remove.ts';
import { runForeground } from '../../engine/containers/run.ts';
import { startContainer } from '../../engine/containers/start.ts';
import { sys } from '../../sys/native.ts';
import { HutchError, isHutchError } from '../../util/errors.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { err, out, writeRaw } from '../output.ts';
import { lineProgress } from '../progress.ts';
import { createRequest, RUN_OPTIONS } from './container-flags.ts';

/** docker's detach keys: "ctrl-p,ctrl-q" by default; "" disables. */
export function parseDetachKeys(spec: string | undefined): Uint8Array | undefined {
  const text = spec ?? 'ctrl-p,ctrl-q';
  if (text === '') return undefined;
  return Uint8Array.from(
    text.split(',').map((k) => {
      const m = /^ctrl-([a-z@[\\\]^_])$/.exec(k);
      if (m) return m[1]!.toUpperCase().charCodeAt(0) & 0x1f;
      if (k.length === 1) return k.charCodeAt(0);
      throw new HutchError('BAD_FLAG', `invalid detach key "${k}"`, {
        hint: 'Use keys such as ctrl-p,ctrl-q or a,b.',
      });
    }),
  );
}

export async function runRun(args: Parsed): Promise<number> {
  const o = args.opts;
  const ctx = await contextFor(args);
  const quiet = o.quiet === true;
  const req = createRequest(
    args,
    quiet ? undefined : { start: (name: string) => err(`Pulling ${name}`), ...lineProgress() },
  );
  if (o.detach === true && req.rm && req.restart)
    throw new HutchError('BAD_FLAG', '--rm and --restart cannot be used together');
  const c = openContainers(ctx);
  const rec = await createContainer(c, req);
  if (o.detach === true) {
    try {
      const started = await startContainer(c, rec.id, { kind: 'detached' });
      started.conmon.release();
    } catch (e) {
      if (req.rm) await forceRemove(c, rec.id, true);
      throw e;
    }
    out(rec.id);
    return 0;
  }
  // With no terminal anywhere and nothing to keep, the container can use our stdio directly.
  // isatty from the addon (which the start loads anyway): process.stdin and
  // friends, or node:tty, load Node's net and stream machinery (~4 ms).
  const { isatty } = sys();
  const anyTty = isatty(0) || isatty(1) || isatty(2);
  const passthrough = req.rm && !req.tty && !anyTty;
  try {
    const r = await runForeground(
      c,
      rec,
      {
        stdin: req.interactive,
        write: writeRaw,
        sigProxy: o.sigProxy !== false,
        detachKeys: req.tty
          ? parseDetachKeys(typeof o.detachKeys === 'string' ? o.detachKeys : undefined)
          : undefined,
      },
      passthrough
        ? { kind: 'passthrough', stdio: [req.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] }
        : undefined,
    );
    return r.exitCode;
  } catch (e) {
    if (req.rm) await forceRemove(c, rec.id, true).catch(() => undefined);
    if (isHutchError(e)) throw e;
    throw e;
  }
}

export const command: CommandSpec = {
  name: 'run',
  summary: 'Create and run a new container from an image',
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  minOperands: 1,
  stopAtOperand: true,
  options: RUN_OPTIONS,
  run: runRun,
};
