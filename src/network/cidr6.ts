/** IPv6 networks as 128-bit numbers: parsing, formatting (RFC 5952), containment, overlap. */
import { HutchError } from '../util/errors.ts';

export interface Ipv6Net {
  base: bigint;
  prefix: number;
}

const ALL = (1n << 128n) - 1n;

/** "fd00::1" as a number; undefined when it is not an IPv6 address. */
export function ipv6ToNumber(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:]+$/.test(text) || text.split('::').length > 2) return undefined;
  const [head = '', tail] = text.split('::');
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const missing = 8 - h.length - t.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const all = [...h, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...t];
  let n = 0n;
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    n = (n << 16n) | BigInt(parseInt(g, 16));
  }
  return n;
}

/** The canonical text form: lower case, no leading zeros, the longest run of zero groups as "::". */
export function numberToIpv6(n: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function mask(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL;
}

/** "fd12:3456:789a:1::/64", at least 256 addresses; a host part set is an error that says what the network would be. */
export function parseIpv6Net(text: string, flag: string): Ipv6Net {
  const [addr = '', bits] = text.split('/');
  const n = ipv6ToNumber(addr);
  const prefix = Number(bits);
  if (n === undefined || bits === undefined || !Number.isInteger(prefix) || prefix < 1 || prefix > 120) {
    throw new HutchError('BAD_FLAG', `${flag} ${text}: not an IPv6 network of at least 256 addresses`, {
      hint: 'Give it in CIDR form with a prefix of at most 120, e.g. fd00:89:1::/64.',
    });
  }
  const base = n & mask(prefix);
  if (base !== n) {
    throw new HutchError('BAD_FLAG', `${flag} ${text}: the address has host bits set`, {
      hint: `Did you mean ${numberToIpv6(base)}/${prefix}?`,
    });
  }
  return { base, prefix };
}

export function formatNet6(net: Ipv6Net): string {
  return `${numberToIpv6(net.base)}/${net.prefix}`;
}

export function contains6(net: Ipv6Net, ip: bigint): boolean {
  return (ip & mask(net.prefix)) === net.base;
}

export function overlaps6(a: Ipv6Net, b: Ipv6Net): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.base & mask(p)) === (b.base & mask(p));
}

/** The network's last address (IPv6 has no broadcast, but hutch keeps it out of leases as docker does). */
export function lastAddress6(net: Ipv6Net): bigint {
  return net.base | (~mask(net.prefix) & ALL);
}

/** A unique local /64 (RFC 4193: fd, a random 40-bit global ID, subnet 0) for a network made without --subnet. */
export function randomUla64(random: () => number = Math.random): Ipv6Net {
  let id = 0n;
  for (let i = 0; i < 5; i++) id = (id << 8n) | BigInt(Math.floor(random() * 256));
  return { base: (0xfdn << 120n) | (id << 80n), prefix: 64 };
}
