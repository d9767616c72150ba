/**
 * Rootful, the user networks' namespace reaches the outside the way
 * docker's bridge does, through the kernel: a veth pair joins it to the
 * host (an interface `hutch<hash>` on the host, eth0 inside) on a /30 of
 * 169.254.128.0/17 chosen per run directory, the namespace's default route
 * goes to the host's end, and the host forwards and masquerades what comes
 * from the namespace's end (an nftables table of hutch's own, removed with
 * the pair). Containers' packets are already masqueraded to eth0's address
 * inside the namespace (infra.ts), so the host sees one address per store
 * and never the networks' subnets: stores cannot clash over them.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { log } from '../util/log.ts';
import { writeFileAtomic } from '../util/fs-atomic.ts';
import { numberToIp } from './cidr.ts';
import { runTool, sbinTool } from './sbin.ts';

export interface HostLink {
  /** The host's end of the pair. */
  hostIf: string;
  /** Its address: the namespace's gateway, and the host as the containers reach it. */
  hostAddr: string;
  /** eth0's address in the namespace, which the host masquerades. */
  infraAddr: string;
}

const FIRST = (169 << 24) + (254 << 16) + (128 << 8);
const SLOTS = 8192;

/** FNV-1a: spreads run directories over names and link subnets (collisions are stepped over). */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** IPv4 addresses on the host's interfaces. */
function hostAddresses(): Set<string> {
  const out = runTool([sbinTool('ip', 'iproute2'), '-4', '-o', 'addr', 'show']);
  return new Set([...out.matchAll(/ inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!));
}

function chooseLink(runroot: string): HostLink {
  const used = hostAddresses();
  const h = hash(runroot);
  for (let i = 0; i < SLOTS; i++) {
    const slot = (h + i) % SLOTS;
    const base = FIRST + slot * 4;
    const hostIf = `hutch${((h + i) >>> 0).toString(16).padStart(8, '0').slice(0, 8)}`;
    const link = { hostIf, hostAddr: numberToIp(base + 1), infraAddr: numberToIp(base + 2) };
    if (!existsSync(`/sys/class/net/${hostIf}`) && !used.has(link.hostAddr) && !used.has(link.infraAddr))
      return link;
  }
  throw new Error('no free link address in 169.254.128.0/17');
}

function hostRules(link: HostLink): string {
  const t = `hutch_${link.hostIf}`;
  return [
    `table ip ${t}`,
    `delete table ip ${t}`,
    `table ip ${t} {`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    `    iifname "${link.hostIf}" accept`,
    `    oifname "${link.hostIf}" ct state established,related accept`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    `    ip saddr ${link.infraAddr} oifname != "${link.hostIf}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Joins the namespace to the host; recorded in linkFile (for hostLinkUp and unlinkFromHost). */
export function linkToHost(infraNetns: string, linkFile: string, runroot: string): HostLink {
  const link = chooseLink(runroot);
  const ip = sbinTool('ip', 'iproute2');
  // Recorded first: a failure half-way leaves what unlinkFromHost needs to undo it.
  writeFileAtomic(linkFile, JSON.stringify(link) + '\n', 0o600, { durable: false });
  runTool([ip, 'link', 'add', link.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', infraNetns]);
  runTool([ip, 'addr', 'add', `${link.hostAddr}/30`, 'dev', link.hostIf]);
  runTool([ip, 'link', 'set', link.hostIf, 'up']);
  runTool(
    [sbinTool('nsenter', 'util-linux'), `--net=${infraNetns}`, ip, '-batch', '-'],
    [
      `addr add ${link.infraAddr}/30 dev eth0`,
      'link set eth0 up',
      `route add default via ${link.hostAddr}`,
      '',
    ].join('\n'),
  );
  // The host routes for the namespace, as it does for docker's bridge.
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
  runTool([sbinTool('nft', 'nftables'), '-f', '-'], hostRules(link));
  return link;
}

export function readHostLink(linkFile: string): HostLink | undefined {
  try {
    return JSON.parse(readFileSync(linkFile, 'utf8')) as HostLink;
  } catch {
    return undefined;
  }
}

/** The pair is there (it goes with the namespace, or with a host that rebooted). */
export function hostLinkUp(linkFile: string): boolean {
  const link = readHostLink(linkFile);
  return link !== undefined && existsSync(`/sys/class/net/${link.hostIf}`);
}

/** Takes the host's side away: the table, the pair (if the namespace did not take it along), the record. */
export function unlinkFromHost(linkFile: string): void {
  const link = readHostLink(linkFile);
  if (!link) return;
  for (const argv of [
    [sbinTool('nft', 'nftables'), 'delete', 'table', 'ip', `hutch_${link.hostIf}`],
    [sbinTool('ip', 'iproute2'), 'link', 'del', link.hostIf],
  ]) {
    try {
      if (argv[1] !== 'link' || existsSync(`/sys/class/net/${link.hostIf}`)) runTool(argv);
    } catch (e) {
      log.debug(`undoing the host link: ${(e as Error).message}`);
    }
  }
  rmSync(linkFile, { force: true });
}
