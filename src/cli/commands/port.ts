import { openContainers } from '../../engine/containers/open.ts';
import { hostSide, portKey } from '../../network/ports.ts';
import { observedState } from '../../runtime/containers/liveness.ts';
import { HutchError } from '../../util/errors.ts';
import { out } from '../output.ts';
import type { CommandSpec, Parsed } from '../args/spec.ts';
import { contextFor } from '../context.ts';

/** "80" or "80/udp" as docker normalises it: "80/tcp", "80/udp". */
function privatePort(spec: string): string {
  const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(spec.trim());
  const port = Number(m?.[1]);
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new HutchError('BAD_FLAG', `invalid port "${spec}"`, {
      hint: 'Give PRIVATE_PORT[/PROTO], e.g. 80 or 53/udp.',
    });
  }
  return `${port}/${(m[2] ?? 'tcp').toLowerCase()}`;
}

export async function runPort(args: Parsed): Promise<void> {
  const [ref, spec] = args.operands as [string, string | undefined];
  const wanted = spec === undefined ? undefined : privatePort(spec);
  const c = openContainers(await contextFor(args));
  const rec = c.store.get(ref);
  const state = observedState(rec, c.store.exitFile(rec.id));
  const ports = state.status === 'running' || state.status === 'paused' ? (state.network?.ports ?? []) : [];
  if (wanted === undefined) {
    for (const b of ports) out(`${portKey(b)} -> ${hostSide(b)}`);
    return;
  }
  const mine = ports.filter((b) => portKey(b) === wanted);
  if (mine.length === 0) {
    throw new HutchError('NO_PUBLIC_PORT', `No public port '${wanted}' published for ${ref}`, {
      exitCode: 1,
    });
  }
  for (const b of mine) out(hostSide(b));
}

export const command: CommandSpec = {
  name: 'port',
  summary: 'List port mappings or a specific mapping for the container',
  usage: 'CONTAINER [PRIVATE_PORT[/PROTO]]',
  minOperands: 1,
  maxOperands: 2,
  run: runPort,
};
