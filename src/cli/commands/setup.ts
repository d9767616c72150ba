import { applySetup, planSetup, setupTarget } from '../../engine/setup/index.ts';
import { INITS } from '../../engine/setup/init.ts';
import type { InitName } from '../../engine/setup/init.ts';
import { undoSteps } from '../../engine/setup/undo.ts';
import type { SetupStep } from '../../engine/setup/index.ts';
import { HutchError } from '../../util/errors.ts';
import { usageError } from '../args/parse.ts';
import { FORMAT_JSON } from '../args/common.ts';
import type { CommandSpec } from '../args/spec.ts';
import { out, printJson } from '../output.ts';

function render(steps: SetupStep[], dryRun: boolean): string {
  const lines: string[] = [];
  for (const s of steps) {
    const tag =
      s.status === 'ok' ? 'ok    ' : s.status === 'manual' ? 'MANUAL' : dryRun ? 'would ' : 'done  ';
    lines.push(`${tag}  ${s.title}: ${s.detail}`);
    for (const d of s.status === 'change' ? (s.diff ?? []) : []) lines.push(`          ${d}`);
  }
  return lines.join('\n');
}

function portStartOf(path: string[], v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) {
    throw usageError(path, `--unprivileged-port-start ${v}: give a port number, 0 to 65535`);
  }
  return n;
}

function initOf(path: string[], v: unknown): InitName | undefined {
  if (typeof v !== 'string') return undefined;
  if (!(INITS as readonly string[]).includes(v)) {
    throw usageError(path, `--init ${v}: hutch writes service files for ${INITS.join(', ')}`);
  }
  return v as InitName;
}

export const command: CommandSpec = {
  name: 'setup',
  summary: 'Prepare this host for a rootless user (run as root)',
  maxOperands: 0,
  options: [
    { long: 'user', kind: 'string', valueName: 'name', description: 'The user to prepare (required)' },
    { long: 'dry-run', kind: 'bool', description: 'Print the plan and file changes, change nothing' },
    {
      long: 'host-root',
      kind: 'string',
      valueName: 'dir',
      description: 'Read and write /etc files below this directory (for testing)',
      default: '/',
    },
    {
      long: 'storage',
      kind: 'bool',
      description: "Also give the user's store a home fitted to its disk (a btrfs subvolume, a ZFS dataset)",
    },
    {
      long: 'storage-path',
      kind: 'string',
      valueName: 'dir',
      description: "With --storage: where the user's store goes (default ~USER/.local/share/hutch)",
    },
    {
      long: 'unprivileged-port-start',
      kind: 'string',
      valueName: 'port',
      description: 'Let users bind ports from this one up (e.g. 80), now and after reboots',
    },
    {
      long: 'init',
      kind: 'string',
      valueName: 'name',
      description:
        'Write boot service files for this init (systemd, openrc, runit, dinit, s6) instead of the one found running',
    },
    { long: 'undo', kind: 'bool', description: 'Take back what earlier runs of setup changed for the user' },
    FORMAT_JSON,
  ],
  run: ({ opts, path }) => {
    if (typeof opts.user !== 'string') throw usageError(path, 'required flag "--user" not set');
    const store =
      opts.storage === true ? (typeof opts.storagePath === 'string' ? opts.storagePath : '') : undefined;
    const portStart = portStartOf(path, opts.unprivilegedPortStart);
    const target = setupTarget(opts.user, String(opts.hostRoot), store, portStart, initOf(path, opts.init));
    const steps = opts.undo === true ? undoSteps(target) : planSetup(target);
    if (!opts.dryRun) applySetup(target, steps);
    if (opts.format === 'json') printJson(steps.map(({ apply: _a, ...rest }) => rest));
    else out(render(steps, opts.dryRun === true));
    if (steps.some((s) => s.status === 'manual')) {
      throw new HutchError('SETUP_MANUAL', 'some steps need your decision (marked MANUAL above)', {
        hint: 'Follow the advice on those lines, then run hutch setup again.',
      });
    }
  },
};
