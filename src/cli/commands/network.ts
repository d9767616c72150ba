/** `hutch network SUBCOMMAND`: user networks, with docker's flags and output. */
import {
  createNetwork,
  inspectNetworks,
  listNetworks,
  networkRow,
  parseLabels,
  pruneNetworks,
  removeNetworks,
} from '../../engine/networks.ts';
import { connectNetwork, disconnectNetwork } from '../../engine/containers/network-connect.ts';
import { openContainers } from '../../engine/containers/open.ts';
import { HutchError } from '../../util/errors.ts';
import { FORMAT_TEMPLATE } from '../args/common.ts';
import type { CommandSpec, OptionSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out, printInspected, reportErrors } from '../output.ts';
import { confirm } from '../prompt.ts';

const list = (v: Parsed['opts'][string]): string[] => (Array.isArray(v) ? v : []);
const str = (v: Parsed['opts'][string]): string | undefined => (typeof v === 'string' ? v : undefined);

/** Repeated --subnet or --gateway values: at most one IPv4 and one IPv6 (which has a colon). */
function byFamily(values: string[], flag: string): { v4: string | undefined; v6: string | undefined } {
  const v4 = values.filter((v) => !v.includes(':'));
  const v6 = values.filter((v) => v.includes(':'));
  if (v4.length > 1 || v6.length > 1) {
    throw new HutchError('BAD_FLAG', `${flag} given twice for one address family`, {
      hint: `Give at most one IPv4 and one IPv6 ${flag}.`,
    });
  }
  return { v4: v4[0], v6: v6[0] };
}

const create: CommandSpec = {
  name: 'create',
  summary: 'Create a network',
  usage: '[OPTIONS] NETWORK',
  minOperands: 1,
  maxOperands: 1,
  options: [
    { long: 'driver', short: 'd', kind: 'string', description: 'Driver to manage the network (bridge)' },
    {
      long: 'subnet',
      kind: 'list',
      default: [],
      description: 'Subnet in CIDR format, IPv4 and/or IPv6 (default: a free 10.89.N.0/24)',
    },
    { long: 'gateway', kind: 'list', default: [], description: 'Gateway for the subnet of its family' },
    {
      long: 'ipv6',
      kind: 'bool',
      description: 'Enable IPv6 (a unique local /64 unless an IPv6 --subnet is given)',
    },
    { long: 'ip-range', kind: 'string', description: 'Allocate container IPs from a sub-range' },
    { long: 'internal', kind: 'bool', description: 'Restrict external access to the network' },
    { long: 'label', kind: 'list', default: [], description: 'Set metadata on a network' },
  ],
  run: async (args) => {
    const { opts } = args;
    const subnet = byFamily(list(opts.subnet), '--subnet');
    const gateway = byFamily(list(opts.gateway), '--gateway');
    const n = createNetwork(await contextFor(args), {
      name: args.operands[0]!,
      driver: str(opts.driver),
      subnet: subnet.v4,
      gateway: gateway.v4,
      subnet6: subnet.v6,
      gateway6: gateway.v6,
      ipRange: str(opts.ipRange),
      internal: opts.internal === true,
      ipv6: opts.ipv6 === true,
      labels: parseLabels(list(opts.label)),
    });
    out(n.id);
  },
};

const filterOption = (short: string | undefined): OptionSpec => ({
  long: 'filter',
  ...(short ? { short } : {}),
  kind: 'list',
  default: [],
  valueName: 'filter',
  description: 'Provide filter values (e.g. "driver=bridge")',
});

const ls: CommandSpec = {
  name: 'ls',
  aliases: ['list'],
  summary: 'List networks',
  usage: '[OPTIONS]',
  maxOperands: 0,
  options: [
    { long: 'quiet', short: 'q', kind: 'bool', description: 'Only display network IDs' },
    { long: 'no-trunc', kind: 'bool', description: 'Do not truncate the output' },
    filterOption('f'),
    { long: 'format', kind: 'string', description: 'Format the output with a Go template, or json' },
  ],
  run: async (args) => {
    const { opts } = args;
    const nets = listNetworks(await contextFor(args), list(opts.filter));
    const id = (full: string): string => (opts.noTrunc === true ? full : full.slice(0, 12));
    if (opts.quiet) {
      out(nets.map((n) => `${id(n.id)}\n`).join(''));
      return;
    }
    const { formatList } = await import('../../util/format.lazy.ts');
    out(
      formatList(
        nets.map((n) => ({ ...networkRow(n), ID: id(n.id) })),
        {
          format: str(opts.format),
          defaultTable: 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}',
          headers: { ID: 'NETWORK ID' },
        },
      ),
    );
  },
};

const inspect: CommandSpec = {
  name: 'inspect',
  summary: 'Display detailed information on one or more networks',
  usage: '[OPTIONS] NETWORK [NETWORK...]',
  minOperands: 1,
  options: [FORMAT_TEMPLATE],
  run: async (args): Promise<number> => {
    const { found, errors } = inspectNetworks(await contextFor(args), args.operands);
    await printInspected(found, typeof args.opts.format === 'string' ? args.opts.format : undefined);
    return reportErrors(errors);
  },
};

const rm: CommandSpec = {
  name: 'rm',
  aliases: ['remove'],
  summary: 'Remove one or more networks',
  usage: 'NETWORK [NETWORK...]',
  minOperands: 1,
  run: async (args): Promise<number> => {
    const { removed, errors } = removeNetworks(await contextFor(args), args.operands);
    for (const name of removed) out(name);
    return reportErrors(errors);
  },
};

const prune: CommandSpec = {
  name: 'prune',
  summary: 'Remove all unused networks',
  usage: '[OPTIONS]',
  maxOperands: 0,
  options: [
    { long: 'force', short: 'f', kind: 'bool', description: 'Do not prompt for confirmation' },
    filterOption(undefined),
  ],
  run: async (args) => {
    const { opts } = args;
    const ctx = await contextFor(args);
    if (opts.force !== true) {
      if (!process.getBuiltinModule('node:tty').isatty(0)) {
        throw new HutchError(
          'CONFIRMATION_REQUIRED',
          'network prune asks for confirmation, and there is no terminal to ask on',
          {
            hint: 'Use -f to prune without asking.',
          },
        );
      }
      const question =
        'WARNING! This will remove all custom networks not used by at least one container.\n' +
        'Are you sure you want to continue? [y/N] ';
      if (!(await confirm(question))) {
        throw new HutchError('ABORTED', 'network prune cancelled', {
          hint: 'Use -f to prune without asking.',
        });
      }
    }
    const removed = pruneNetworks(ctx, list(opts.filter));
    if (removed.length > 0) out(`Deleted Networks:\n${removed.join('\n')}`);
  },
};

const connect: CommandSpec = {
  name: 'connect',
  summary: 'Connect a container to a network',
  usage: '[OPTIONS] NETWORK CONTAINER',
  minOperands: 2,
  maxOperands: 2,
  options: [
    { long: 'alias', kind: 'list', default: [], description: 'Add network-scoped alias for the container' },
    { long: 'ip', kind: 'string', description: 'IPv4 address' },
  ],
  run: async (args) => {
    const [net, container] = args.operands as [string, string];
    connectNetwork(openContainers(await contextFor(args)), net, container, {
      aliases: list(args.opts.alias),
      ip: str(args.opts.ip),
    });
  },
};

const disconnect: CommandSpec = {
  name: 'disconnect',
  summary: 'Disconnect a container from a network',
  usage: '[OPTIONS] NETWORK CONTAINER',
  minOperands: 2,
  maxOperands: 2,
  options: [{ long: 'force', short: 'f', kind: 'bool', description: 'Force the container to disconnect' }],
  run: async (args) => {
    const [net, container] = args.operands as [string, string];
    disconnectNetwork(openContainers(await contextFor(args)), net, container);
  },
};

export const command: CommandSpec = {
  name: 'network',
  summary: 'Manage networks',
  subcommands: [connect, create, disconnect, inspect, ls, prune, rm],
};
