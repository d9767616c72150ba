/** `hutch volume SUBCOMMAND`: named volumes, with docker's flags and output. */
// Containers tell images and volumes when they are in use, and stop with the store.
import '../../engine/containers/open.ts';
import {
  createVolume,
  inspectVolumes,
  listVolumes,
  pruneVolumes,
  removeVolumes,
  volumeRow,
} from '../../engine/volumes.ts';
import { HutchError } from '../../util/errors.ts';
import { humanSize } from '../../util/human.ts';
import { FORMAT_TEMPLATE } from '../args/common.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out, printInspected, reportErrors } from '../output.ts';
import { confirm } from '../prompt.ts';
import { clone, receive, rollback, send, snapshot, snapshots } from './volume-snapshot.ts';

const list = (v: Parsed['opts'][string]): string[] => (Array.isArray(v) ? v : []);

const create: CommandSpec = {
  name: 'create',
  summary: 'Create a volume',
  usage: '[OPTIONS] [VOLUME]',
  maxOperands: 1,
  options: [
    {
      long: 'driver',
      short: 'd',
      kind: 'string',
      default: 'local',
      description: 'Specify volume driver name',
    },
    { long: 'label', short: 'l', kind: 'list', default: [], description: 'Set metadata for a volume' },
    { long: 'opt', short: 'o', kind: 'list', default: [], description: 'Set driver specific options' },
    { long: 'name', kind: 'string', hidden: true, description: 'Specify volume name' },
  ],
  run: async (args) => {
    const { opts, operands } = args;
    const flagName = typeof opts.name === 'string' ? opts.name : undefined;
    if (flagName !== undefined && operands[0] !== undefined && flagName !== operands[0]) {
      throw new HutchError(
        'BAD_FLAG',
        'conflicting options: either specify --name or provide positional arg, not both',
      );
    }
    const v = createVolume(await contextFor(args), {
      name: operands[0] ?? flagName,
      driver: typeof opts.driver === 'string' ? opts.driver : undefined,
      labels: list(opts.label),
      options: list(opts.opt),
    });
    out(v.name);
  },
};

const ls: CommandSpec = {
  name: 'ls',
  aliases: ['list'],
  summary: 'List volumes',
  usage: '[OPTIONS]',
  maxOperands: 0,
  options: [
    { long: 'quiet', short: 'q', kind: 'bool', description: 'Only display volume names' },
    {
      long: 'filter',
      short: 'f',
      kind: 'list',
      default: [],
      valueName: 'filter',
      description: 'Provide filter values (e.g. "dangling=true")',
    },
    { long: 'format', kind: 'string', description: 'Format the output with a Go template, or json' },
  ],
  run: async (args) => {
    const { opts } = args;
    const volumes = listVolumes(await contextFor(args), list(opts.filter));
    if (opts.quiet) {
      out(volumes.map((v) => `${v.name}\n`).join(''));
      return;
    }
    const { formatList } = await import('../../util/format.lazy.ts');
    out(
      formatList(volumes.map(volumeRow), {
        format: typeof opts.format === 'string' ? opts.format : undefined,
        defaultTable: 'table {{.Driver}}\t{{.Name}}',
        headers: { Name: 'VOLUME NAME' },
      }),
    );
  },
};

const inspect: CommandSpec = {
  name: 'inspect',
  summary: 'Display detailed information on one or more volumes',
  usage: '[OPTIONS] VOLUME [VOLUME...]',
  minOperands: 1,
  options: [FORMAT_TEMPLATE],
  run: async (args): Promise<number> => {
    const { found, errors } = inspectVolumes(await contextFor(args), args.operands);
    await printInspected(found, typeof args.opts.format === 'string' ? args.opts.format : undefined);
    return reportErrors(errors);
  },
};

const rm: CommandSpec = {
  name: 'rm',
  aliases: ['remove'],
  summary: 'Remove one or more volumes',
  usage: '[OPTIONS] VOLUME [VOLUME...]',
  minOperands: 1,
  options: [
    { long: 'force', short: 'f', kind: 'bool', description: 'Force the removal of one or more volumes' },
  ],
  run: async (args): Promise<number> => {
    const { removed, errors } = removeVolumes(
      await contextFor(args),
      args.operands,
      args.opts.force === true,
    );
    for (const name of removed) out(name);
    return reportErrors(errors);
  },
};

const prune: CommandSpec = {
  name: 'prune',
  summary: 'Remove unused local volumes',
  usage: '[OPTIONS]',
  maxOperands: 0,
  options: [
    // Docker 23+ prunes only anonymous volumes unless -a; hutch prunes every unused one, so -a changes nothing.
    {
      long: 'all',
      short: 'a',
      kind: 'bool',
      description: 'Remove all unused volumes (always the case here)',
    },
    { long: 'force', short: 'f', kind: 'bool', description: 'Do not prompt for confirmation' },
    {
      long: 'filter',
      kind: 'list',
      default: [],
      valueName: 'filter',
      description: 'Provide filter values (e.g. "label=<label>")',
    },
  ],
  run: async (args) => {
    const { opts } = args;
    const ctx = await contextFor(args);
    if (opts.force !== true) {
      if (!process.getBuiltinModule('node:tty').isatty(0)) {
        throw new HutchError(
          'CONFIRMATION_REQUIRED',
          'volume prune asks for confirmation, and there is no terminal to ask on',
          { hint: 'Use -f to prune without asking.' },
        );
      }
      const question =
        'WARNING! This will remove all local volumes not used by at least one container.\n' +
        'Are you sure you want to continue? [y/N] ';
      if (!(await confirm(question))) {
        throw new HutchError('ABORTED', 'volume prune cancelled', {
          hint: 'Use -f to prune without asking.',
        });
      }
    }
    const r = pruneVolumes(ctx, list(opts.filter));
    if (r.removed.length > 0) out(`Deleted Volumes:\n${r.removed.join('\n')}\n\n`);
    out(`Total reclaimed space: ${humanSize(r.reclaimed)}`);
  },
};

export const command: CommandSpec = {
  name: 'volume',
  summary: 'Manage volumes',
  subcommands: [create, inspect, ls, prune, rm, snapshot, snapshots, rollback, clone, send, receive],
};
