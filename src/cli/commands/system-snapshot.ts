/**
 * `hutch system snapshot|snapshots|rollback`: the whole store's snapshots
 * (../../engine/store-snapshots.ts does the work).
 */
import {
  listStoreSnapshots,
  removeStoreSnapshot,
  rollbackStore,
  snapshotStore,
} from '../../engine/store-snapshots.ts';
import { HutchError } from '../../util/errors.ts';
import type { CommandSpec } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { err, out } from '../output.ts';

export const snapshot: CommandSpec = {
  name: 'snapshot',
  summary: 'Take a snapshot of the whole store (btrfs), or remove one: snapshot rm NAME',
  usage: 'NAME | rm NAME',
  minOperands: 1,
  maxOperands: 2,
  run: async (args) => {
    const ctx = await contextFor(args);
    const [a, b] = args.operands;
    if (b !== undefined) {
      if (a !== 'rm' && a !== 'remove') {
        throw new HutchError('USAGE', '"hutch system snapshot" takes NAME, or rm NAME', {
          hint: 'See: hutch system snapshot --help',
        });
      }
      removeStoreSnapshot(ctx, b);
      out(b);
      return;
    }
    out(snapshotStore(ctx, a!).name);
  },
};

export const snapshots: CommandSpec = {
  name: 'snapshots',
  summary: "List the store's snapshots",
  maxOperands: 0,
  options: [
    { long: 'quiet', short: 'q', kind: 'bool', description: 'Only display snapshot names' },
    { long: 'format', kind: 'string', description: 'Format the output with a Go template, or json' },
  ],
  run: async (args) => {
    const { opts } = args;
    const list = listStoreSnapshots(await contextFor(args));
    if (opts.quiet) {
      out(list.map((s) => `${s.name}\n`).join(''));
      return;
    }
    const { formatList } = await import('../../util/format.lazy.ts');
    const rows = list.map((s) => ({
      Name: s.name,
      CreatedAt: s.created.replace(/\.\d+Z$/, 'Z'),
      Images: s.images,
      Containers: s.containers,
      Volumes: s.volumes.length,
      Layers: s.layers.length,
    }));
    out(
      formatList(rows, {
        format: typeof opts.format === 'string' ? opts.format : undefined,
        defaultTable: 'table {{.Name}}\t{{.CreatedAt}}\t{{.Images}}\t{{.Containers}}\t{{.Volumes}}',
        headers: { Name: 'SNAPSHOT', CreatedAt: 'CREATED' },
      }),
    );
  },
};

export const rollback: CommandSpec = {
  name: 'rollback',
  summary: 'Make the store what one of its snapshots holds',
  usage: '[OPTIONS] NAME',
  minOperands: 1,
  maxOperands: 1,
  options: [{ long: 'force', short: 'f', kind: 'bool', description: 'Stop running containers first' }],
  run: async (args) => {
    const r = await rollbackStore(await contextFor(args), args.operands[0]!, args.opts.force === true);
    if (r.stopped.length > 0) err(`stopped: ${r.stopped.join(', ')}`);
    out(r.snapshot.name);
  },
};
