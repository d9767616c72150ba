/**
 * User networks on disk: ROOT/networks/NAME.json per network (written whole,
 * temp then rename) and ROOT/networks/NAME.leases.json, the addresses
 * handed to running containers. Every change happens under one lock,
 * ROOT/networks/.lock, so concurrent creates never take the same subnet or
 * the same address.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { withLock } from '../sys/lock.ts';
import { HutchError, errnoCode } from '../util/errors.ts';
import { writeJsonAtomic } from '../util/fs-atomic.ts';
import { randomHex } from '../util/random.ts';
import { contains, formatNet, ipToNumber, lastAddress, numberToIp, overlaps, parseIpv4Net } from './cidr.ts';
import type { Ipv4Net } from './cidr.ts';
import {
  contains6,
  formatNet6,
  ipv6ToNumber,
  lastAddress6,
  numberToIpv6,
  overlaps6,
  parseIpv6Net,
  randomUla64,
} from './cidr6.ts';

export interface NetworkRecord {
  id: string;
  name: string;
  driver: 'bridge';
  created: string;
  subnet: string;
  gateway: string;
  /** Containers get addresses from here (default: the whole subnet). */
  ipRange: string | undefined;
  /** No way out: containers reach each other only. */
  internal: boolean;
  labels: Record<string, string>;
  /** The bridge in the user's network namespace. */
  bridge: string;
  /** IPv6 beside IPv4 (--ipv6, or an IPv6 --subnet): containers get an address of each. */
  ipv6?: { subnet: string; gateway: string };
}

export interface NetworkRequest {
  name: string;
  driver: string | undefined;
  subnet: string | undefined;
  gateway: string | undefined;
  ipRange: string | undefined;
  internal: boolean;
  labels: Record<string, string>;
  /** IPv6 too; with no subnet6, a unique local /64 is chosen. */
  ipv6?: boolean;
  subnet6?: string;
  gateway6?: string;
}

/** Container ID -> the addresses it holds, with the names it answers to on this network. */
export type Leases = Record<string, { ip: string; ip6?: string; names: string[] }>;

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** The default network's name (what `--network bridge` joins) and its subnet, as podman's. */
export const DEFAULT_NETWORK = 'hutch';
const DEFAULT_SUBNET = '10.88.0.0/16';
/** The names --network takes for modes, which no network may have. */
const RESERVED = new Set(['none', 'host', 'pasta', 'slirp4netns', 'default', 'private', 'bridge']);

/** Where hutch looks for free /24 networks, as podman does: 10.89.1.0/24 and up. */
const AUTO_FIRST = ((10 << 24) | (89 << 16) | (1 << 8)) >>> 0; // 10.89.1.0, without parsing at every load
const AUTO_COUNT = 255;

export class NetworkStore {
  readonly dir: string;
  constructor(root: string) {
    this.dir = join(root, 'networks');
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  leasesFile(name: string): string {
    return join(this.dir, `${name}.leases.json`);
  }

  /** Runs fn under the networks' lock. */
  locked<T>(fn: () => T): T {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return withLock(join(this.dir, '.lock'), fn);
  }

  list(): NetworkRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .filter((n) => n.endsWith('.json') && !n.endsWith('.leases.json') && !n.startsWith('.'))
      .map((n) => this.read(n.slice(0, -5)))
      .filter((r): r is NetworkRecord => r !== undefined)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  read(name: string): NetworkRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.file(name), 'utf8')) as NetworkRecord;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || e instanceof SyntaxError) return undefined;
      throw e;
    }
  }

  /** A network by name, full ID or unique ID prefix. */
  find(ref: string): NetworkRecord | undefined {
    const byName = NAME.test(ref) ? this.read(ref) : undefined;
    if (byName) return byName;
    const matches = this.list().filter((n) => n.id.startsWith(ref));
    return matches.length === 1 ? matches[0] : undefined;
  }

  /**
   * The default network (`--network bridge`; rootful, what no --network
   * means), made on first use: podman's subnet, 10.88.0.0/16, unless
   * another network has part of it.
   */
  defaultNetwork(): NetworkRecord {
    const existing = this.read(DEFAULT_NETWORK);
    if (existing) return existing;
    const wanted = parseIpv4Net(DEFAULT_SUBNET, 'subnet');
    const clash = this.list().some((n) => overlaps(parseIpv4Net(n.subnet, 'subnet'), wanted));
    try {
      return this.create({
        name: DEFAULT_NETWORK,
        driver: 'bridge',
        subnet: clash ? undefined : DEFAULT_SUBNET,
        gateway: undefined,
        ipRange: undefined,
        internal: false,
        labels: {},
      });
    } catch (e) {
      // Made by a concurrent command meanwhile.
      const made = this.read(DEFAULT_NETWORK);
      if (made) return made;
      throw e;
    }
  }

  /** The IPv6 subnet and gateway of a new network; the caller holds the lock. */
  private ipv6Part(req: NetworkRequest): { subnet: string; gateway: string } {
    const taken = this.list().flatMap((n) => (n.ipv6 ? [parseIpv6Net(n.ipv6.subnet, 'subnet')] : []));
    let subnet = req.subnet6 ? parseIpv6Net(req.subnet6, '--subnet') : randomUla64();
    for (let i = 0; !req.subnet6 && taken.some((t) => overlaps6(t, subnet)) && i < 16; i++)
      subnet = randomUla64();
    const clash = this.list().find((n) => n.ipv6 && overlaps6(parseIpv6Net(n.ipv6.subnet, 'subnet'), subnet));
    if (clash) {
      throw new HutchError(
        'SUBNET_IN_USE',
        `--subnet ${formatNet6(subnet)} overlaps network ${clash.name} (${clash.ipv6!.subnet})`,
        { hint: 'Give another IPv6 subnet, or leave it out to have a unique local one chosen.' },
      );
    }
    const gateway = req.gateway6 ?? numberToIpv6(subnet.base + 1n);
    const gw = ipv6ToNumber(gateway);
    if (gw === undefined || !contains6(subnet, gw) || gw === subnet.base || gw === lastAddress6(subnet)) {
      throw new HutchError(
        'BAD_FLAG',
        `--gateway ${gateway} is not a host address of ${formatNet6(subnet)}`,
        {
          hint: `Give an address inside the subnet, e.g. ${numberToIpv6(subnet.base + 1n)}.`,
        },
      );
    }
    return { subnet: formatNet6(subnet), gateway: numberToIpv6(gw) };
  }

  get(ref: string): NetworkRecord {
    if (ref === DEFAULT_NETWORK) return this.defaultNetwork();
    const n = this.find(ref);
    if (!n) {
      throw new HutchError('NO_SUCH_NETWORK', `network ${ref} not found`, {
        hint: 'List networks with hutch network ls, or create it: hutch network create NAME.',
      });
    }
    return n;
  }

  create(req: NetworkRequest): NetworkRecord {
    if (!NAME.test(req.name)) {
      throw new HutchError('BAD_FLAG', `invalid network name "${req.name}"`, {
        hint: 'Only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed.',
      });
    }
    if (RESERVED.has(req.name)) {
      throw new HutchError('BAD_FLAG', `"${req.name}" is a --network mode, not a name a network can have`, {
        hint: 'Choose another name.',
      });
    }
    if (req.driver !== undefined && req.driver !== 'bridge') {
      throw new HutchError('BAD_FLAG', `network driver "${req.driver}" is not supported`, {
        hint: 'hutch makes bridge networks (-d bridge, the default).',
      });
    }
    return this.locked(() => {
      if (this.read(req.name)) {
        throw new HutchError('NETWORK_EXISTS', `network with name ${req.name} already exists`, {
          hint: 'Choose another name, or remove it first: hutch network rm ' + req.name,
        });
      }
      const taken = this.list().map((n) => parseIpv4Net(n.subnet, 'subnet'));
      const subnet = req.subnet ? parseIpv4Net(req.subnet, '--subnet') : freeSubnet(taken);
      if (subnet.prefix > 30) {
        throw new HutchError(
          'BAD_FLAG',
          `--subnet ${formatNet(subnet)} is too small for a gateway and containers`,
          {
            hint: 'Give a /30 or larger, e.g. /24.',
          },
        );
      }
      const clash = this.list().find((n) => overlaps(parseIpv4Net(n.subnet, 'subnet'), subnet));
      if (clash) {
        throw new HutchError(
          'SUBNET_IN_USE',
          `--subnet ${formatNet(subnet)} overlaps network ${clash.name} (${clash.subnet})`,
          {
            hint: 'Give another subnet, or leave --subnet out to have a free one chosen.',
          },
        );
      }
      const gateway = req.gateway ?? numberToIp(subnet.base + 1);
      const gw = ipToNumber(gateway);
      if (gw === undefined || !contains(subnet, gw) || gw === subnet.base || gw === lastAddress(subnet)) {
        throw new HutchError(
          'BAD_FLAG',
          `--gateway ${gateway} is not a host address of ${formatNet(subnet)}`,
          {
            hint: `Give an address inside the subnet, e.g. ${numberToIp(subnet.base + 1)}.`,
          },
        );
      }
      let ipRange: string | undefined;
      if (req.ipRange !== undefined) {
        const r = parseIpv4Net(req.ipRange, '--ip-range');
        if (!contains(subnet, r.base) || r.prefix < subnet.prefix) {
          throw new HutchError(
            'BAD_FLAG',
            `--ip-range ${req.ipRange} is not inside --subnet ${formatNet(subnet)}`,
            {
              hint: 'Give a range inside the subnet.',
            },
          );
        }
        ipRange = formatNet(r);
      }
      const ipv6 = req.ipv6 || req.subnet6 !== undefined ? this.ipv6Part(req) : undefined;
      const id = randomHex(32);
      const rec: NetworkRecord = {
        id,
        name: req.name,
        driver: 'bridge',
        created: new Date().toISOString(),
        subnet: formatNet(subnet),
        gateway,
        ipRange,
        internal: req.internal,
        labels: req.labels,
        bridge: `hb${id.slice(0, 12)}`,
        ...(ipv6 ? { ipv6 } : {}),
      };
      writeJsonAtomic(this.file(rec.name), rec, 0o600);
      return rec;
    });
  }

  /** Removes the definition; the caller checks first that no container uses it. */
  remove(name: string): void {
    this.locked(() => {
      rmSync(this.file(name), { force: true });
      rmSync(this.leasesFile(name), { force: true });
    });
  }

  readLeases(name: string): Leases {
    try {
      return JSON.parse(readFileSync(this.leasesFile(name), 'utf8')) as Leases;
    } catch {
      return {};
    }
  }

  writeLeases(name: string, leases: Leases): void {
    if (Object.keys(leases).length === 0) rmSync(this.leasesFile(name), { force: true });
    else writeJsonAtomic(this.leasesFile(name), leases, 0o600, { durable: false });
  }
}

function freeSubnet(taken: Ipv4Net[]): Ipv4Net {
  for (let i = 0; i < AUTO_COUNT; i++) {
    const candidate = { base: (AUTO_FIRST + i * 256) >>> 0, prefix: 24 };
    if (!taken.some((t) => overlaps(t, candidate))) return candidate;
  }
  throw new HutchError('NO_FREE_SUBNET', 'no free subnet is left in 10.89.1.0-10.89.255.0', {
    hint: 'Remove unused networks (hutch network prune), or give --subnet.',
  });
}

/**
 * The next free address of a network for a container: the one asked for
 * (--ip) if free and inside, else the lowest free one of the range. The
 * caller holds the lock.
 */
export function pickAddress(net: NetworkRecord, leases: Leases, wanted: string | undefined): string {
  const subnet = parseIpv4Net(net.subnet, 'subnet');
  const used = new Set(Object.values(leases).map((l) => l.ip));
  used.add(net.gateway);
  if (wanted !== undefined) {
    const n = ipToNumber(wanted);
    if (n === undefined || !contains(subnet, n) || n === subnet.base || n === lastAddress(subnet)) {
      throw new HutchError(
        'BAD_FLAG',
        `--ip ${wanted} is not a host address of network ${net.name} (${net.subnet})`,
      );
    }
    if (used.has(wanted)) {
      throw new HutchError('IP_IN_USE', `${wanted} is already in use on network ${net.name}`, {
        hint: 'Give another --ip, or leave it out to have a free one chosen.',
      });
    }
    return wanted;
  }
  const range = net.ipRange ? parseIpv4Net(net.ipRange, 'ip-range') : subnet;
  for (let n = range.base + 1; n < lastAddress(range); n++) {
    if (!contains(subnet, n) || n === lastAddress(subnet)) continue;
    const ip = numberToIp(n);
    if (!used.has(ip)) return ip;
  }
  throw new HutchError(
    'NO_FREE_ADDRESS',
    `network ${net.name} has no free address left in ${net.ipRange ?? net.subnet}`,
    {
      hint: 'Stop containers on it, or create a network with a larger subnet.',
    },
  );
}

/** The lowest free IPv6 address of a network with IPv6, for a container; the caller holds the lock. */
export function pickAddress6(net: NetworkRecord, leases: Leases): string | undefined {
  if (!net.ipv6) return undefined;
  const subnet = parseIpv6Net(net.ipv6.subnet, 'subnet');
  const used = new Set(Object.values(leases).flatMap((l) => (l.ip6 ? [l.ip6] : [])));
  used.add(net.ipv6.gateway);
  for (let n = subnet.base + 1n; n < lastAddress6(subnet); n++) {
    const ip = numberToIpv6(n);
    if (!used.has(ip)) return ip;
  }
  throw new HutchError(
    'NO_FREE_ADDRESS',
    `network ${net.name} has no free IPv6 address left in ${net.ipv6.subnet}`,
    {
      hint: 'Stop containers on it, or create a network with a larger IPv6 subnet.',
    },
  );
}
