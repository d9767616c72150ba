/**
 * Rootful, the ports of a container on user networks are published by the
 * kernel, as docker publishes them: DNAT on the host to the infra
 * namespace's end of its link (hostlink.ts), and DNAT there to the
 * container. Clients keep their address and no process carries the bytes.
 * What the kernel cannot route stays with hutch-portfwd: clients on the
 * host's loopback, and IPv6.
 *
 * Each container has a table of its own in both namespaces, `hutch_p_<id12>`,
 * removed when it is released, or after a killed start by whoever releases
 * it next.
 */
import { log } from '../util/log.ts';
import type { HostLink } from './hostlink.ts';
import { inNetns } from './infra.ts';
import type { PortBinding } from './ports.ts';
import { runTool, sbinTool } from './sbin.ts';

const tableOf = (id: string): string => `hutch_p_${id.slice(0, 12)}`;

const isV4 = (ip: string): boolean => /^\d+\.\d+\.\d+\.\d+$/.test(ip);

/**
 * Which bindings the kernel serves (`nat`) and which hutch-portfwd relays:
 * "every address" is both (the kernel for the host's own addresses, the
 * relay for 127.0.0.1 and IPv6), loopback and IPv6 addresses the relay only.
 */
export function splitForKernel(ports: PortBinding[]): { nat: PortBinding[]; relay: PortBinding[] } {
  const nat: PortBinding[] = [];
  const relay: PortBinding[] = [];
  for (const p of ports) {
    if (p.hostIp === '') {
      nat.push(p);
      relay.push({ ...p, hostIp: '127.0.0.1' }, { ...p, hostIp: '::' });
    } else if (isV4(p.hostIp) && !p.hostIp.startsWith('127.')) {
      nat.push(p);
    } else {
      relay.push(p);
    }
  }
  return { nat, relay };
}

/** The host's rules: traffic to its own addresses (from outside, and from itself) goes to the infra's end. */
export function hostNatRules(id: string, link: HostLink, nat: PortBinding[]): string {
  const t = tableOf(id);
  const match = (p: PortBinding): string =>
    `fib daddr type local ${p.hostIp ? `ip daddr ${p.hostIp} ` : ''}${p.protocol} dport ${p.hostPort}`;
  const to = (p: PortBinding): string => `dnat to ${link.infraAddr}:${p.hostPort}`;
  return [
    `table ip ${t}`,
    `delete table ip ${t}`,
    `table ip ${t} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...nat.map((p) => `    ${match(p)} ${to(p)}`),
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...nat.map((p) => `    ip daddr != 127.0.0.0/8 ${match(p)} ${to(p)}`),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The infra namespace's rules: from its link to the container's own address and port. */
export function infraNatRules(id: string, link: HostLink, containerIp: string, nat: PortBinding[]): string {
  const t = tableOf(id);
  return [
    `table ip ${t}`,
    `delete table ip ${t}`,
    `table ip ${t} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...nat.map(
      (p) =>
        `    iifname "eth0" ip daddr ${link.infraAddr} ${p.protocol} dport ${p.hostPort} dnat to ${containerIp}:${p.containerPort}`,
    ),
    '  }',
    '}',
    '',
  ].join('\n');
}

export function publishByKernel(
  id: string,
  infraNetns: string,
  link: HostLink,
  containerIp: string,
  nat: PortBinding[],
): void {
  const nft = sbinTool('nft', 'nftables');
  inNetns(infraNetns, [nft, '-f', '-'], infraNatRules(id, link, containerIp, nat));
  runTool([nft, '-f', '-'], hostNatRules(id, link, nat));
}

/** Takes a container's rules away, where they are; nothing is wrong when there are none. */
export function unpublishByKernel(id: string, infraNetns: string | undefined): void {
  const nft = sbinTool('nft', 'nftables');
  const del = [nft, 'delete', 'table', 'ip', tableOf(id)];
  for (const run of [() => runTool(del), () => (infraNetns ? inNetns(infraNetns, del) : '')]) {
    try {
      run();
    } catch (e) {
      // No such table: published by no kernel rule, or already taken away.
      log.debug(`removing published ports' rules: ${(e as Error).message}`);
    }
  }
}
