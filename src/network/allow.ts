/**
 * --publish-allow: published ports admit only clients from the given
 * networks, without root and without the host's firewall. Clients that
 * reach the container through pasta's tap (every host address but loopback)
 * keep their own address, so nftables rules in the container's own network
 * namespace judge them; clients on the host's loopback come through
 * hutch-portfwd (native/portfwd.c), which judges them at accept and passes
 * the address on. This file decides which port goes which way and writes the
 * rules.
 */
import { networkInterfaces } from 'node:os';
import { HutchError } from '../util/errors.ts';
import { ipFamily } from '../util/ip.ts';
import type { PortBinding } from './ports.ts';

/** A CIDR (or a bare address) in its normal form: "10.0.0.0/8", "::1/128". */
export function parseAllow(text: string): string {
  const [addr = '', prefix, extra] = text.split('/');
  const family = ipFamily(addr);
  const max = family === 4 ? 32 : 128;
  const bits = prefix === undefined ? max : Number(prefix);
  if (
    family === 0 ||
    extra !== undefined ||
    !Number.isInteger(bits) ||
    bits < 0 ||
    bits > max ||
    prefix === ''
  ) {
    throw new HutchError('BAD_FLAG', `--publish-allow ${text}: not an IPv4 or IPv6 network`, {
      hint: 'Give an address or a network in CIDR form, e.g. 192.168.1.0/24, 127.0.0.2/32 or 2001:db8::/32.',
    });
  }
  return `${family === 6 ? addr.toLowerCase() : addr}/${bits}`;
}

export function isLoopbackAddress(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}

/**
 * The host's addresses for "every address" when clients are judged. pasta
 * (this one, at least) takes a port once, on one address: it gets the
 * IPv4 address of the interface with the default route, where most clients
 * come from and keep their address. hutch-portfwd takes loopback and every
 * other address; clients there are judged as well, but reach the container
 * from its loopback unless they are on the host's loopback too.
 */
export interface HostAddresses {
  primary: string | undefined;
  others: string[];
}

export function hostAddresses(defaultInterface: string | undefined): HostAddresses {
  const out: HostAddresses = { primary: undefined, others: [] };
  for (const [name, list] of Object.entries(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal || isLoopbackAddress(a.address)) continue;
      // Link-local IPv6 needs a scope to bind: clients there are left out.
      if (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:')) continue;
      if (out.primary === undefined && name === defaultInterface && a.family === 'IPv4')
        out.primary = a.address;
      else out.others.push(a.address);
    }
  }
  return out;
}

export interface AllowSplit {
  /** For pasta: judged by nftables in the container's namespace. */
  pasta: PortBinding[];
  /** For hutch-portfwd: judged at accept. */
  forward: PortBinding[];
}

/** Which way each binding goes when clients are judged (see hostAddresses). */
export function splitForAllowlist(ports: PortBinding[], host: HostAddresses): AllowSplit {
  const split: AllowSplit = { pasta: [], forward: [] };
  for (const b of ports) {
    if (b.hostIp !== '') {
      (isLoopbackAddress(b.hostIp) ? split.forward : split.pasta).push(b);
      continue;
    }
    if (host.primary) split.pasta.push({ ...b, hostIp: host.primary });
    for (const ip of ['127.0.0.1', '::1', ...host.others]) split.forward.push({ ...b, hostIp: ip });
  }
  return split;
}

/**
 * nftables rules for the container's namespace: new connections to the
 * published container ports from outside the allowlist are reset (TCP) or
 * dropped (UDP). Traffic on the container's own loopback is not judged: it
 * is the container's own, or hutch-portfwd's, which judged it already.
 */
export function allowRules(ports: PortBinding[], allow: string[]): string {
  const set = (family: 4 | 6): string => {
    const elements = allow.filter((a) => (ipFamily(a.split('/')[0]!) === 4) === (family === 4));
    return [
      `  set allow${family} {`,
      `    type ipv${family}_addr`,
      '    flags interval',
      ...(elements.length > 0 ? [`    elements = { ${elements.join(', ')} }`] : []),
      '  }',
    ].join('\n');
  };
  const rules: string[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    const dports = [...new Set(ports.filter((p) => p.protocol === proto).map((p) => p.containerPort))];
    if (dports.length === 0) continue;
    const verdict = proto === 'tcp' ? 'reject with tcp reset' : 'drop';
    for (const [fam, key] of [
      ['ip', 4],
      ['ip6', 6],
    ] as const) {
      rules.push(`    ${proto} dport { ${dports.join(', ')} } ${fam} saddr != @allow${key} ${verdict}`);
    }
  }
  return [
    'table inet hutch_publish_allow {',
    set(4),
    set(6),
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    '    iifname "lo" accept',
    ...rules,
    '  }',
    '}',
    '',
  ].join('\n');
}
