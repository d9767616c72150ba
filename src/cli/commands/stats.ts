import { views } from '../../engine/containers/list.ts';
import { openContainers } from '../../engine/containers/open.ts';
import { sampleContainer, statsRow } from '../../engine/containers/stats.ts';
import type { StatsSample } from '../../engine/containers/stats.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { FORMAT_TEMPLATE } from '../args/common.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out } from '../output.ts';

const DEFAULT =
  'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';

const HEADERS = {
  ID: 'CONTAINER ID',
  Container: 'CONTAINER',
  Name: 'NAME',
  CPUPerc: 'CPU %',
  MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %',
  NetIO: 'NET I/O',
  BlockIO: 'BLOCK I/O',
  PIDs: 'PIDS',
};

/** docker reads CPU time twice, a second apart, to show a rate. */
const INTERVAL_MS = 1000;

interface Target {
  rec: ContainerRecord;
  label: string;
}

export async function runStats(args: Parsed): Promise<void> {
  const o = args.opts;
  const c = openContainers(await contextFor(args));
  const noTrunc = o.noTrunc === true;
  const all = o.all === true;
  // Named containers stay listed (stopped ones with zeros) until removed; without names the
  // list is read again each round, so containers started meanwhile appear, as with docker.
  const named = args.operands.map((ref) => ({ id: c.store.get(ref).id, label: ref }));
  const targets = (): Target[] =>
    named.length > 0
      ? named.flatMap(({ id, label }) => {
          const rec = c.store.read(id);
          return rec ? [{ rec, label }] : [];
        })
      : views(c)
          .filter((v) => all || v.state.status === 'running' || v.state.status === 'paused')
          .map((v) => ({ rec: v.rec, label: v.rec.id.slice(0, 12) }));
  let format = typeof o.format === 'string' ? o.format : undefined;
  // docker's json: one object per line, as a stream reader wants it.
  if (format === 'json') format = '{{json .}}';
  const { formatList } = await import('../../util/format.lazy.ts');
  const stream = o.noStream !== true;
  const clear = stream && process.stdout.isTTY === true;

  let prev = new Map<string, StatsSample>();
  for (const t of targets()) {
    const s = sampleContainer(c, t.rec);
    if (s) prev.set(t.rec.id, s);
  }
  for (;;) {
    await new Promise((r) => setTimeout(r, INTERVAL_MS));
    const next = new Map<string, StatsSample>();
    const rows = targets().map((t) => {
      const cur = sampleContainer(c, t.rec);
      if (cur) next.set(t.rec.id, cur);
      return statsRow(t.rec, t.label, prev.get(t.rec.id), cur, noTrunc);
    });
    const text = formatList(rows, { ...(format ? { format } : {}), defaultTable: DEFAULT, headers: HEADERS });
    // On a terminal each round replaces the last (clear, cursor home); elsewhere rounds follow each other.
    out(clear ? `\x1b[2J\x1b[H${text}` : text);
    if (!stream) return;
    prev = next;
  }
}

export const command: CommandSpec = {
  name: 'stats',
  summary: 'Display a live stream of container(s) resource usage statistics',
  usage: '[OPTIONS] [CONTAINER...]',
  options: [
    {
      long: 'all',
      short: 'a',
      kind: 'bool',
      description: 'Show all containers (default shows just running)',
    },
    {
      long: 'no-stream',
      kind: 'bool',
      description: 'Disable streaming stats and only pull the first result',
    },
    { long: 'no-trunc', kind: 'bool', description: 'Do not truncate output' },
    FORMAT_TEMPLATE,
  ],
  run: runStats,
};
