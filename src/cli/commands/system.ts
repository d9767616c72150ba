// Containers tell images and volumes when they are in use, and stop with the store.
import '../../engine/containers/open.ts';
import { systemCheck } from '../../engine/check.ts';
import { systemMigrate, systemReset } from '../../engine/system.ts';
import { HutchError } from '../../util/errors.ts';
import { FORMAT_JSON } from '../args/common.ts';
import type { CommandSpec } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out, printJson } from '../output.ts';
import { confirm } from '../prompt.ts';
import { df } from './system-df.ts';
import { rollback, snapshot, snapshots } from './system-snapshot.ts';

const migrate: CommandSpec = {
  name: 'migrate',
  summary: 'Stop containers and restart the user namespace (after changing /etc/subuid)',
  maxOperands: 0,
  run: async (args) => {
    const r = await systemMigrate(await contextFor(args));
    if (r.pauseStopped) out('stopped the pause process; the namespace is rebuilt on next use');
  },
};

const reset: CommandSpec = {
  name: 'reset',
  summary: 'Remove all images, containers, volumes, networks and store snapshots of this user',
  maxOperands: 0,
  options: [{ long: 'force', short: 'f', kind: 'bool', description: 'Do not ask for confirmation' }],
  run: async (args) => {
    const { opts } = args;
    const ctx = await contextFor(args);
    if (!opts.force) {
      const ok = await confirm(
        `This removes every image, container, volume, network and store snapshot in ${ctx.paths.root}.\nAre you sure you want to continue? [y/N] `,
      );
      if (!ok)
        throw new HutchError('ABORTED', 'reset cancelled', { hint: 'Use -f to reset without asking.' });
    }
    await systemReset(ctx);
  },
};

const check: CommandSpec = {
  name: 'check',
  summary: 'Verify the store is consistent',
  maxOperands: 0,
  options: [{ long: 'repair', kind: 'bool', description: 'Remove what is broken' }, FORMAT_JSON],
  run: async (args) => {
    const { opts } = args;
    const report = await systemCheck(await contextFor(args), { repair: opts.repair === true });
    const problems = report.findings.filter((f) => f.severity === 'problem' && !f.repaired).length;
    if (opts.format === 'json') printJson(report);
    else {
      for (const f of report.findings)
        out(`${f.repaired ? 'repaired ' : ''}${f.severity}: ${f.what}: ${f.detail}`);
      out(problems === 0 ? 'the store is consistent' : `${problems} problem(s) found`);
    }
    return problems === 0 ? 0 : 1;
  },
};

export const command: CommandSpec = {
  name: 'system',
  summary: 'Manage hutch itself',
  subcommands: [
    check,
    df,
    migrate,
    reset,
    snapshot,
    snapshots,
    rollback,
    {
      name: 'supervise',
      summary: 'Run the healthcheck supervisor (started by hutch on demand)',
      maxOperands: 0,
      run: async (args) => {
        const { openContainers } = await import('../../engine/containers/open.ts');
        const { supervise } = await import('../../engine/containers/supervisor.ts');
        await supervise(openContainers(await contextFor(args)));
      },
    },
  ],
};
