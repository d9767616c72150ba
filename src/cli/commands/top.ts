import { openContainers } from '../../engine/containers/open.ts';
import { topContainer } from '../../engine/containers/top.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out } from '../output.ts';

export async function runTop(args: Parsed): Promise<void> {
  const [ref, ...psArgs] = args.operands as [string, ...string[]];
  const c = openContainers(await contextFor(args));
  const r = topContainer(c, ref, psArgs);
  out(table([r.titles, ...r.processes]));
}

/** docker's tabwriter for top: each column as wide as its widest cell plus 3, and at least 20. */
function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 20, cell.length + 3)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join(''))
    .join('\n');
}

export const command: CommandSpec = {
  name: 'top',
  summary: 'Display the running processes of a container',
  usage: 'CONTAINER [ps OPTIONS]',
  minOperands: 1,
  // Everything after the container belongs to ps (`top c -o pid,comm`).
  stopAtOperand: true,
  run: runTop,
};
