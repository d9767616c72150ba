import { execInContainer } from '../../engine/containers/exec.ts';
import { openContainers } from '../../engine/containers/open.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';

export async function runExec(args: Parsed): Promise<number> {
  const o = args.opts;
  const [container, ...command] = args.operands;
  const c = openContainers(await contextFor(args));
  return execInContainer(c, {
    container: container!,
    command,
    interactive: o.interactive === true,
    tty: o.tty === true,
    detach: o.detach === true,
    env: (o.env as string[]) ?? [],
    envFiles: (o.envFile as string[]) ?? [],
    user: typeof o.user === 'string' ? o.user : undefined,
    workdir: typeof o.workdir === 'string' ? o.workdir : undefined,
    privileged: o.privileged === true,
  });
}

export const command: CommandSpec = {
  name: 'exec',
  summary: 'Execute a command in a running container',
  usage: '[OPTIONS] CONTAINER COMMAND [ARG...]',
  minOperands: 2,
  stopAtOperand: true,
  options: [
    { long: 'detach', short: 'd', kind: 'bool', description: 'Detached mode: run command in the background' },
    {
      long: 'detach-keys',
      kind: 'string',
      description: 'Override the key sequence for detaching a container',
    },
    { long: 'env', short: 'e', kind: 'list', default: [], description: 'Set environment variables' },
    { long: 'env-file', kind: 'list', default: [], description: 'Read in a file of environment variables' },
    { long: 'interactive', short: 'i', kind: 'bool', description: 'Keep STDIN open even if not attached' },
    { long: 'privileged', kind: 'bool', description: 'Give extended privileges to the command' },
    { long: 'tty', short: 't', kind: 'bool', description: 'Allocate a pseudo-TTY' },
    {
      long: 'user',
      short: 'u',
      kind: 'string',
      description: 'Username or UID (format: <name|uid>[:<group|gid>])',
    },
    { long: 'workdir', short: 'w', kind: 'string', description: 'Working directory inside the container' },
  ],
  run: runExec,
};
