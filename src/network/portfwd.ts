/**
 * Starting hutch-portfwd (native/portfwd.c) for a container's ports on the
 * host's loopback that admit only some clients, and for the ports of
 * containers on user networks: one per such container (see ready-helper.ts).
 */
import { portfwdPath } from '../sys/native-paths.ts';
import type { PortBinding } from './ports.ts';
import { startReadyHelper } from './ready-helper.ts';

/**
 * What hutch-portfwd's kept source addresses need in the container's
 * namespace: its connections (SO_MARK 1) mark their conntrack entries, the
 * server's replies on those entries are marked in turn, and marked packets
 * are routed to this host (table 100: everything local), where the
 * transparent socket that made the connection receives them.
 */
export const KEEP_SOURCE_ROUTES = [
  'rule add fwmark 1 lookup 100',
  'route add local 0.0.0.0/0 dev lo table 100',
];
export const KEEP_SOURCE_RULES = [
  'table ip hutch_keep_source {',
  '  chain output {',
  '    type route hook output priority mangle; policy accept;',
  '    meta mark 0x1 ct mark set 0x1',
  '    ct direction reply ct mark 0x1 meta mark set 0x1',
  '  }',
  '}',
  '',
].join('\n');

/**
 * `target`: the container's own address on its network. Clients that are
 * not on the host's loopback are then connected from their own address
 * (keepSourceRules must be in place in the namespace); without it they
 * arrive from the container's loopback.
 */
export async function startForwarder(
  netns: string,
  allow: string[],
  ports: PortBinding[],
  target?: string,
): Promise<number> {
  const listen = ports.map(
    (p) =>
      `${p.protocol === 'udp' ? 'udp:' : ''}${p.hostIp},${p.hostPort},${p.containerPort}` +
      (target && !p.hostIp.includes(':') ? `,${target}` : ''),
  );
  return startReadyHelper(portfwdPath(), [netns, ...allow, '--', ...listen], {
    what: 'hutch-portfwd could not listen',
    hint: 'Check that the port is free on loopback (ss -ltnp), or publish without --publish-allow.',
  });
}
