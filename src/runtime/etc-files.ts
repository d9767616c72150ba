/**
 * The text of the files every container gets its own copy of: /etc/hosts,
 * /etc/hostname and /etc/resolv.conf, with docker's contents and rules.
 */
import { ipFamily } from '../util/ip.ts';
import { HutchError } from '../util/errors.ts';

export interface AddHost {
  host: string;
  /** An address, or `host-gateway` for the caller to replace with the host's address. */
  ip: string;
}

export const HOST_GATEWAY = 'host-gateway';

/** What docker puts at the top of every container's /etc/hosts. */
const LOCALHOST_LINES = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

export interface HostsOptions {
  hostname: string;
  addHosts: AddHost[];
  /** The container's own addresses on its networks; none with `--network none` or before the network is up. */
  containerIps?: string[];
  /** Lines appended as they are (for example other containers' names on a shared network). */
  extra?: string;
}

export function hostsFile(opts: HostsOptions): string {
  const lines = [...LOCALHOST_LINES];
  for (const { host, ip } of opts.addHosts) lines.push(`${ip}\t${host}`);
  // `host.example.com` is also reachable as `host`, as docker writes it.
  const dot = opts.hostname.indexOf('.');
  const names = dot > 0 ? `${opts.hostname} ${opts.hostname.slice(0, dot)}` : opts.hostname;
  const ips = opts.containerIps ?? [];
  if (ips.length > 0) {
    for (const ip of ips) lines.push(`${ip}\t${names}`);
  } else {
    // Docker writes no line for the hostname without an address, and then
    // `ping $(hostname)` or software that resolves its own name (Java, sudo,
    // some databases) fails or waits for DNS. Loopback is always there.
    lines.push(`127.0.0.1\t${names}`, `::1\t${names}`);
  }
  let text = lines.join('\n') + '\n';
  if (opts.extra !== undefined && opts.extra !== '')
    text += opts.extra.endsWith('\n') ? opts.extra : opts.extra + '\n';
  return text;
}

function badAddHost(value: string, why: string): HutchError {
  return new HutchError('BAD_FLAG', `bad --add-host ${JSON.stringify(value)}: ${why}`, {
    hint: 'Write it as HOST:IP or HOST=IP, e.g. db:10.0.0.5, db=::1, db:[::1] or db:host-gateway.',
  });
}

/**
 * `--add-host`: `host:ip` (split at the first colon, so `host:::1` works),
 * `host=ip`, and the address may be in brackets (`host:[::1]`). The address
 * is kept as written, not normalised: it is what the user expects to see.
 */
export function parseAddHost(value: string): AddHost {
  let sep = value.indexOf('=');
  if (sep < 0) sep = value.indexOf(':');
  if (sep < 0) throw badAddHost(value, 'no IP address');
  const host = value.slice(0, sep);
  let ip = value.slice(sep + 1);
  if (host === '' || /[\s:]/.test(host)) throw badAddHost(value, 'not a host name');
  if (ip === HOST_GATEWAY) return { host, ip };
  if (ip.length > 2 && ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (ipFamily(ip) === 0) throw badAddHost(value, `${JSON.stringify(ip)} is not an IP address`);
  return { host, ip };
}

export function hostnameFile(hostname: string): string {
  return `${hostname}\n`;
}

/**
 * A name the kernel takes (at most 64 bytes) made of DNS labels: letters,
 * digits, `-` (not first or last), and `_`, which is not DNS but common
 * in compose service names.
 */
export function validHostname(name: string): boolean {
  if (name.length === 0 || name.length > 64) return false;
  return name.split('.').every((label) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label));
}

export interface ResolvConfOptions {
  /** The text of the host's resolv.conf (the caller picks the file: with systemd-resolved, the upstream one). */
  hostResolvConf: string;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  network: 'none' | 'host' | 'private';
  /** Nameservers the container's network provides, used when the host's are all on its loopback. */
  networkDns?: string[] | undefined;
}

/** Docker's fallback when no usable nameserver is left. */
const DEFAULT_NAMESERVERS = ['8.8.8.8', '8.8.4.4'];

/** 127.0.0.0/8 and ::1 (in any spelling): unreachable from a container's own network namespace. */
function isLoopback(ip: string): boolean {
  const family = ipFamily(ip);
  if (family === 4) return ip.startsWith('127.');
  if (family !== 6) return false;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const groups = [...head.split(':'), ...tail.split(':')].filter((g) => g !== '');
  return (
    groups.length > 0 && groups.slice(0, -1).every((g) => /^0+$/.test(g)) && /^0*1$/.test(groups.at(-1)!)
  );
}

interface ParsedResolvConf {
  nameservers: string[];
  search: string[] | undefined;
  options: string[] | undefined;
  /** Other directives (sortlist, ...), kept; the host's comments are not, they describe the host's file. */
  other: string[];
}

function parseResolvConf(text: string): ParsedResolvConf {
  const parsed: ParsedResolvConf = { nameservers: [], search: undefined, options: undefined, other: [] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const [key, ...args] = line.split(/\s+/);
    if (key === 'nameserver') {
      if (args[0] !== undefined) parsed.nameservers.push(args[0]);
    } else if (key === 'search' || key === 'domain') {
      // The resolver uses the last search or domain line.
      parsed.search = args.filter((a) => !a.startsWith('#') && !a.startsWith(';'));
    } else if (key === 'options') {
      parsed.options = [...(parsed.options ?? []), ...args];
    } else {
      parsed.other.push(line);
    }
  }
  return parsed;
}

function checkDns(dns: string[]): void {
  for (const ip of dns) {
    if (ipFamily(ip) === 0) {
      throw new HutchError('BAD_FLAG', `--dns ${JSON.stringify(ip)} is not an IP address`, {
        hint: 'Give the address of a nameserver, e.g. --dns 10.0.0.2.',
      });
    }
  }
}

function checkSearch(domains: string[]): void {
  for (const d of domains) {
    if (d === '' || /\s/.test(d) || d.startsWith('-')) {
      throw new HutchError('BAD_FLAG', `--dns-search ${JSON.stringify(d)} is not a domain name`, {
        hint: 'Give a domain, e.g. --dns-search example.com, or `.` for none.',
      });
    }
  }
}

/**
 * A container's resolv.conf. The host's file is the start; `--dns`,
 * `--dns-search` (`.` for none) and `--dns-option` replace its parts. On a
 * private network (and `none`) loopback nameservers are dropped: 127.0.0.53
 * in the container is the container's own loopback, where nothing answers.
 * If that leaves none, docker's public fallback is used.
 */
export function resolvConf(opts: ResolvConfOptions): string {
  const { dns, dnsSearch, dnsOptions } = opts;
  if (dns !== undefined) checkDns(dns);
  if (dnsSearch !== undefined) checkSearch(dnsSearch);
  const overridden = Boolean(dns?.length || dnsSearch?.length || dnsOptions?.length);
  // The host's network is the host's: its resolver works as it is.
  if (opts.network === 'host' && !overridden) return opts.hostResolvConf;

  const host = parseResolvConf(opts.hostResolvConf);
  let nameservers: string[];
  if (dns !== undefined && dns.length > 0) {
    nameservers = dns;
  } else if (opts.network === 'host') {
    nameservers = host.nameservers;
  } else {
    nameservers = host.nameservers.filter((ip) => ipFamily(ip) !== 0 && !isLoopback(ip));
    if (nameservers.length === 0 && opts.networkDns?.length) nameservers = opts.networkDns;
    if (nameservers.length === 0) nameservers = DEFAULT_NAMESERVERS;
  }
  let search = host.search ?? [];
  if (dnsSearch !== undefined && dnsSearch.length > 0) search = dnsSearch.includes('.') ? [] : dnsSearch;
  const options = dnsOptions !== undefined && dnsOptions.length > 0 ? dnsOptions : (host.options ?? []);

  const lines = [...host.other, ...nameservers.map((ip) => `nameserver ${ip}`)];
  if (search.length > 0) lines.push(`search ${search.join(' ')}`);
  if (options.length > 0) lines.push(`options ${options.join(' ')}`);
  return lines.join('\n') + '\n';
}
