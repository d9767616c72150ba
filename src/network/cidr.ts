/** IPv4 networks as numbers: parsing, containment, overlap, and the addresses in them. */
import { HutchError } from '../util/errors.ts';

export interface Ipv4Net {
  /** The network address, as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

export function ipToNumber(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** "10.89.1.0/24"; a host part set is an error that says what the network would be. */
export function parseIpv4Net(text: string, flag: string): Ipv4Net {
  const [addr = '', bits] = text.split('/');
  const n = ipToNumber(addr);
  const prefix = Number(bits);
  if (n === undefined || bits === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw new HutchError('BAD_FLAG', `${flag} ${text}: not an IPv4 network`, {
      hint: text.includes(':')
        ? 'Give the IPv4 network here; an IPv6 one goes in a --subnet of its own (network create).'
        : 'Give it in CIDR form, e.g. 10.89.5.0/24.',
    });
  }
  const base = (n & mask(prefix)) >>> 0;
  if (base !== n) {
    throw new HutchError('BAD_FLAG', `${flag} ${text}: the address has host bits set`, {
      hint: `The network is ${numberToIp(base)}/${prefix}.`,
    });
  }
  return { base, prefix };
}

export function formatNet(net: Ipv4Net): string {
  return `${numberToIp(net.base)}/${net.prefix}`;
}

export function contains(net: Ipv4Net, ip: number): boolean {
  return (ip & mask(net.prefix)) >>> 0 === net.base;
}

export function overlaps(a: Ipv4Net, b: Ipv4Net): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.base & mask(p)) >>> 0 === (b.base & mask(p)) >>> 0;
}

/** The last address of the network (its broadcast address when the prefix is below 31). */
export function lastAddress(net: Ipv4Net): number {
  return (net.base | (~mask(net.prefix) >>> 0)) >>> 0;
}
