import {
  commandText,
  createdAgo,
  filterViews,
  statusText,
  summaryViews,
} from '../../engine/containers/list.ts';
import type { ContainerView } from '../../engine/containers/list.ts';
import type { ContainerSummary } from '../../runtime/containers/store.ts';
import { openContainerReader } from '../../engine/containers/open-light.ts';
import type { ContainerReader } from '../../engine/containers/open-light.ts';
import { humanSize } from '../../util/human.ts';
import { formatPorts } from '../../network/ports.ts';
import { FORMAT_TEMPLATE } from '../args/common.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out } from '../output.ts';
import { duSize } from '../../engine/containers/size.ts';

const DEFAULT =
  'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedAt}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';

function trunc(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function row(
  v: ContainerView<ContainerSummary>,
  noTrunc: boolean,
  now: number,
  withSize: boolean,
  c: ContainerReader,
) {
  const cmd = commandText(v.rec);
  return {
    ID: noTrunc ? v.rec.id : v.rec.id.slice(0, 12),
    Image: v.rec.config.image,
    Command: noTrunc ? `"${cmd}"` : `"${trunc(cmd, 20)}"`,
    CreatedAt: v.rec.created,
    RunningFor: createdAgo(v.rec.created, now),
    Status: statusText(v.state, now),
    State: v.state.status,
    Ports: v.state.status === 'running' && v.state.network ? formatPorts(v.state.network.ports) : '',
    Names: v.rec.name,
    Labels: Object.entries(v.rec.config.labels)
      .map(([k, val]) => `${k}=${val}`)
      .join(','),
    Mounts: v.rec.hostConfig.mounts.map((m) => m.name ?? m.source).join(','),
    Networks: v.rec.hostConfig.networkMode,
    Size: withSize ? humanSize(duSize(c, v.rec)) : '',
    ExitCode: v.state.exitCode,
    Pid: v.state.pid,
  };
}

/**
 * Default table without the template engine, computing only its columns:
 * `ps` is run often and must be quick.
 */
function fastTable(
  list: ContainerView<ContainerSummary>[],
  noTrunc: boolean,
  now: number,
  size: boolean,
  c: ContainerReader,
): string {
  const head = [
    'CONTAINER ID',
    'IMAGE',
    'COMMAND',
    'CREATED',
    'STATUS',
    'PORTS',
    'NAMES',
    ...(size ? ['SIZE'] : []),
  ];
  const cells = list.map((v) => {
    const cmd = commandText(v.rec);
    const row = [
      noTrunc ? v.rec.id : v.rec.id.slice(0, 12),
      v.rec.config.image,
      noTrunc ? `"${cmd}"` : `"${trunc(cmd, 20)}"`,
      createdAgo(v.rec.created, now),
      statusText(v.state, now),
      v.state.status === 'running' && v.state.network ? formatPorts(v.state.network.ports) : '',
      v.rec.name,
    ];
    if (size) row.push(humanSize(duSize(c, v.rec)));
    return row;
  });
  const widths = head.map((h) => h.length);
  for (const r of cells) for (let i = 0; i < r.length; i++) widths[i] = Math.max(widths[i]!, r[i]!.length);
  const line = (r: string[]): string => {
    let text = '';
    for (let i = 0; i < r.length - 1; i++) text += r[i]!.padEnd(widths[i]! + 3);
    return (text + r[r.length - 1]).trimEnd();
  };
  return [line(head), ...cells.map(line)].join('\n');
}

export async function runPs(args: Parsed): Promise<void> {
  const o = args.opts;
  const c = openContainerReader(await contextFor(args));
  let list = summaryViews(c);
  const filters = (o.filter as string[] | undefined) ?? [];
  const all =
    o.all === true || filters.length > 0 || o.latest === true || (typeof o.last === 'number' && o.last >= 0);
  if (!all) list = list.filter((v) => v.state.status === 'running' || v.state.status === 'paused');
  list = filterViews(list, filters, c);
  if (o.latest === true) list = list.slice(0, 1);
  if (typeof o.last === 'number' && o.last >= 0) list = list.slice(0, o.last);
  const noTrunc = o.noTrunc === true;
  if (o.quiet === true) {
    if (list.length) out(list.map((v) => (noTrunc ? v.rec.id : v.rec.id.slice(0, 12))).join('\n'));
    return;
  }
  const now = Date.now();
  const size = o.size === true;
  const format = typeof o.format === 'string' ? o.format : undefined;
  if (format === undefined || format === 'table') {
    out(fastTable(list, noTrunc, now, size, c));
    return;
  }
  const rows = list.map((v) => row(v, noTrunc, now, size, c));
  const { formatList } = await import('../../util/format.lazy.ts');
  out(
    formatList(
      format === 'json'
        ? rows
        : rows.map((r) => ({
            ...r,
            CreatedAt: r.CreatedAt.replace('T', ' ').replace(/\..*$/, ' +0000 UTC'),
          })),
      {
        format,
        defaultTable: DEFAULT,
        headers: { ID: 'CONTAINER ID', RunningFor: 'CREATED', CreatedAt: 'CREATED AT' },
      },
    ),
  );
}

export const command: CommandSpec = {
  name: 'ps',
  aliases: ['ls', 'list'],
  summary: 'List containers',
  usage: '[OPTIONS]',
  maxOperands: 0,
  options: [
    {
      long: 'all',
      short: 'a',
      kind: 'bool',
      description: 'Show all containers (default shows just running)',
    },
    { long: 'quiet', short: 'q', kind: 'bool', description: 'Only display container IDs' },
    { long: 'size', short: 's', kind: 'bool', description: 'Display total file sizes' },
    {
      long: 'last',
      short: 'n',
      kind: 'int',
      default: -1,
      description: 'Show n last created containers (includes all states)',
    },
    {
      long: 'latest',
      short: 'l',
      kind: 'bool',
      description: 'Show the latest created container (includes all states)',
    },
    { long: 'no-trunc', kind: 'bool', description: "Don't truncate output" },
    { long: 'filter', kind: 'list', default: [], description: 'Filter output based on conditions provided' },
    FORMAT_TEMPLATE,
  ],
  run: runPs,
};
