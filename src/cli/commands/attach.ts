import { attachContainer } from '../../engine/containers/attach.ts';
import { openContainers } from '../../engine/containers/open.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { err, writeRaw } from '../output.ts';
import { parseDetachKeys } from './run.ts';

export async function runAttach(args: Parsed): Promise<number> {
  const o = args.opts;
  const keys = parseDetachKeys(typeof o.detachKeys === 'string' ? o.detachKeys : undefined);
  const c = openContainers(await contextFor(args));
  const r = await attachContainer(c, args.operands[0]!, {
    stdin: o.noStdin !== true,
    write: writeRaw,
    sigProxy: o.sigProxy !== false,
    detachKeys: keys,
  });
  if (r.detached) {
    err('read escape sequence');
    return 0;
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
