import { attachContainer } from '../../engine/containers/attach.ts';
import { openContainers } from '../../engine/containers/open.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { err } from '../output.ts';
import { writeSync } from 'node:fs';
import { which } from '../../util/which.ts';
import { parseDetachKeys } from './run.ts';

function writeOut(stream: 1 | 2, data: Buffer): void {
  let buf = data;
  while (buf.length) {
    try {
      buf = buf.subarray(writeSync(stream, buf));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
    }
  }
}

/**
 * Ends the command at once, with status 0. The read of the attach socket is
 * still blocked in a libuv pool thread (the container runs on, and may print
 * nothing for hours), and a normal exit joins the pool's threads, so it would
 * wait for the container's next output. Replacing the process with `true`
 * ends those threads without a join; the socket is close-on-exec.
 */
function leaveNow(): never {
  const t = which('true');
  if (t && typeof process.execve === 'function') process.execve(t, ['true'], {});
  process.exit(0);
}

export async function runAttach(args: Parsed): Promise<number> {
  const o = args.opts;
  const keys = parseDetachKeys(typeof o.detachKeys === 'string' ? o.detachKeys : undefined);
  const c = openContainers(await contextFor(args));
  const r = await attachContainer(c, args.operands[0]!, {
    stdin: o.noStdin !== true,
    write: writeOut,
    sigProxy: o.sigProxy !== false,
    detachKeys: keys,
  });
  if (r.detached) {
    err('read escape sequence');
    leaveNow();
  }
  return r.exitCode;
}

export const command: CommandSpec = {
  name: 'attach',
  summary: 'Attach local standard input, output, and error streams to a running container',
  usage: '[OPTIONS] CONTAINER',
  minOperands: 1,
  maxOperands: 1,
  options: [
    { long: 'no-stdin', kind: 'bool', description: 'Do not attach STDIN' },
    {
      long: 'detach-keys',
      kind: 'string',
      description: 'Override the key sequence for detaching a container',
    },
    {
      long: 'sig-proxy',
      kind: 'bool',
      default: true,
      description: 'Proxy all received signals to the process',
    },
  ],
  run: runAttach,
};
