import { openContainers } from '../../engine/containers/open.ts';
import { logConfig } from '../../engine/containers/start.ts';
import { isRunning } from '../../engine/containers/stop.ts';
import { parseTimeFilter, readLogs, writeLogs } from '../../runtime/logs.ts';
import { HutchError } from '../../util/errors.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { writeSync } from 'node:fs';

export async function runLogs(args: Parsed): Promise<void> {
  const o = args.opts;
  const c = openContainers(await contextFor(args));
  const rec = c.store.get(args.operands[0]!);
  const cfg = logConfig(c, rec);
  if (cfg.driver !== 'k8s-file') {
    throw new HutchError(
      'NO_LOGS',
      `container ${rec.name} keeps no logs (log driver ${rec.hostConfig.logDriver})`,
      {
        hint: 'Create it with --log-driver k8s-file to keep its output.',
      },
    );
  }
  const tailText = typeof o.tail === 'string' ? o.tail : 'all';
  const tail = tailText === 'all' ? undefined : Number(tailText);
  if (tail !== undefined && !Number.isInteger(tail))
    throw new HutchError('BAD_FLAG', `--tail ${tailText}: a number or "all"`);
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const entries = readLogs(cfg.path, {
    ...(tail !== undefined && tail >= 0 ? { tail } : {}),
    ...(typeof o.since === 'string' ? { since: parseTimeFilter(o.since) } : {}),
    ...(typeof o.until === 'string' ? { until: parseTimeFilter(o.until) } : {}),
    follow: o.follow === true,
    isRunning: () => {
      const now = c.store.read(rec.id);
      return now !== undefined && isRunning(c, now);
    },
    signal: ac.signal,
  });
  await writeLogs(
    entries,
    (stream, text) => {
      writeSync(stream === 'stderr' ? 2 : 1, text);
    },
    { timestamps: o.timestamps === true },
  );
}

export const command: CommandSpec = {
  name: 'logs',
  summary: 'Fetch the logs of a container',
  usage: '[OPTIONS] CONTAINER',
  minOperands: 1,
  maxOperands: 1,
  options: [
    { long: 'follow', short: 'f', kind: 'bool', description: 'Follow log output' },
    {
      long: 'tail',
      short: 'n',
      kind: 'string',
      description: 'Number of lines to show from the end of the logs (default "all")',
    },
    {
      long: 'since',
      kind: 'string',
      description: 'Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)',
    },
    { long: 'until', kind: 'string', description: 'Show logs before a timestamp or relative time' },
    { long: 'timestamps', short: 't', kind: 'bool', description: 'Show timestamps' },
    { long: 'details', kind: 'bool', description: 'Show extra details provided to logs' },
  ],
  run: runLogs,
};
