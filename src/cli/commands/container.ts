/** `hutch container SUBCOMMAND`: the container commands under one name, as docker has them. */
import { cleanupContainer } from '../../engine/containers/cleanup.ts';
import { openContainers } from '../../engine/containers/open.ts';
import { pruneContainers } from '../../engine/containers/prune.ts';
import { humanSize } from '../../util/human.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { confirm } from '../prompt.ts';
import { out } from '../output.ts';
import { command as attach } from './attach.ts';
import { command as commit } from './commit.ts';
import { command as cp } from './cp.ts';
import { command as create } from './create.ts';
import { command as diff } from './diff.ts';
import { command as exec } from './exec.ts';
import { command as exportCmd } from './export.ts';
import { command as inspect, runInspectImages } from './inspect.ts';
import { command as kill } from './kill.ts';
import { command as logs } from './logs.ts';
import { command as pause } from './pause.ts';
import { command as port } from './port.ts';
import { command as ps } from './ps.ts';
import { command as rename } from './rename.ts';
import { command as restart } from './restart.ts';
import { command as rm } from './rm.ts';
import { command as run } from './run.ts';
import { command as start } from './start.ts';
import { command as stats } from './stats.ts';
import { command as stop } from './stop.ts';
import { command as top } from './top.ts';
import { command as unpause } from './unpause.ts';
import { command as update } from './update.ts';
import { command as wait } from './wait.ts';

/** The exit command conmon runs when a container ends (not for users; hidden from help). */
const cleanup: CommandSpec = {
  name: 'cleanup',
  summary: 'Release what an exited container held and apply its restart policy',
  usage: 'CONTAINER',
  minOperands: 1,
  maxOperands: 1,
  run: async (args: Parsed) => {
    const c = openContainers(await contextFor(args));
    const rec = c.store.find(args.operands[0]!);
    if (rec) await cleanupContainer(c, rec.id, true);
  },
};

const prune: CommandSpec = {
  name: 'prune',
  summary: 'Remove all stopped containers',
  usage: '[OPTIONS]',
  maxOperands: 0,
  options: [
    { long: 'force', short: 'f', kind: 'bool', description: 'Do not prompt for confirmation' },
    {
      long: 'filter',
      kind: 'list',
      default: [],
      description: 'Provide filter values (e.g. until=<timestamp>, label=<key>=<value>)',
    },
  ],
  run: async (args: Parsed) => {
    if (args.opts.force !== true) {
      const ok = await confirm(
        'WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ',
      );
      if (!ok) return;
    }
    const c = openContainers(await contextFor(args));
    const r = pruneContainers(c, (args.opts.filter as string[]) ?? []);
    out('Deleted Containers:');
    for (const id of r.removed) out(id);
    out('');
    out(`Total reclaimed space: ${humanSize(r.reclaimed)}`);
  },
};

export const command: CommandSpec = {
  name: 'container',
  summary: 'Manage containers',
  subcommands: [
    attach,
    cleanup,
    commit,
    cp,
    create,
    diff,
    exec,
    exportCmd,
    {
      ...inspect,
      summary: 'Display detailed information on one or more containers',
      run: (a) => runInspectImages({ ...a, opts: { ...a.opts, type: 'container' } }),
    },
    kill,
    logs,
    pause,
    port,
    { ...ps, name: 'ls', aliases: ['list', 'ps'] },
    prune,
    rename,
    restart,
    rm,
    run,
    start,
    stats,
    stop,
    top,
    unpause,
    update,
    wait,
  ],
};
