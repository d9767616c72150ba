/** `hutch image SUBCOMMAND`: the image commands under one name, as docker has them. */
import type { CommandSpec } from '../args/spec.ts';
import { command as history } from './history.ts';
import { prune } from './image-prune.ts';
import { command as images } from './images.ts';
import { command as importCommand } from './import.ts';
import { command as inspect, runInspectImages } from './inspect.ts';
import { command as load } from './load.ts';
import { command as pull } from './pull.ts';
import { command as push } from './push.ts';
import { command as rmi } from './rmi.ts';
import { command as save } from './save.ts';
import { command as tag } from './tag.ts';

export const command: CommandSpec = {
  name: 'image',
  summary: 'Manage images',
  subcommands: [
    history,
    importCommand,
    {
      ...inspect,
      summary: 'Display detailed information on one or more images',
      run: (a) => runInspectImages({ ...a, opts: { ...a.opts, type: 'image' } }),
    },
    { ...images, name: 'ls', aliases: ['list'] },
    load,
    prune,
    pull,
    push,
    { ...rmi, name: 'rm' },
    save,
    tag,
  ],
};
