/**
 * `--network` values: what each means, checked at create so that a start
 * never meets a value it cannot use. The record keeps the value as given
 * (docker's HostConfig.NetworkMode); every start parses it again.
 */
import { HutchError } from '../util/errors.ts';
import { DEFAULT_NETWORK } from './store.ts';

export type NetworkMode =
  | { kind: 'none' }
  | { kind: 'host' }
  | { kind: 'pasta'; options: string[] }
  | { kind: 'slirp4netns'; options: SlirpOptions }
  | { kind: 'container'; ref: string }
  | { kind: 'ns'; path: string }
  /** User networks (hutch network create), by name. */
  | { kind: 'networks'; names: string[] };

export interface SlirpOptions {
  mtu: number;
  allowHostLoopback: boolean;
  enableIpv6: boolean;
  cidr: string | undefined;
  outboundAddr: string | undefined;
}

/** The user-mode networks hutch drives: each container gets its own namespace and helper. */
export const USER_MODE = ['pasta', 'slirp4netns'] as const;

function bad(value: string, why: string, hint: string): HutchError {
  return new HutchError('BAD_FLAG', `--network ${value}: ${why}`, { hint });
}

/** pasta's options that hutch sets itself, from the container's flags: giving them twice would contradict. */
const PASTA_OWNED = new Set([
  '--netns',
  '--pid',
  '-P',
  '--runas',
  '-f',
  '--foreground',
  '--config-net',
  '-t',
  '--tcp-ports',
  '-u',
  '--udp-ports',
]);

function pastaOptions(value: string, text: string): string[] {
  const opts = text === '' ? [] : text.split(',');
  for (const o of opts) {
    const name = o.split('=')[0]!;
    if (PASTA_OWNED.has(name)) {
      throw bad(
        value,
        `pasta's ${name} is set by hutch`,
        "Publish ports with -p; the namespace and the process are hutch's to manage.",
      );
    }
    if (o === '' || (!o.startsWith('-') && !/^[\w.:/%~,-]+$/.test(o))) {
      throw bad(
        value,
        `"${o}" is not a pasta option`,
        'Give pasta options separated by commas, e.g. --network pasta:--mtu,1500.',
      );
    }
  }
  return opts;
}

function slirpOptions(value: string, text: string): SlirpOptions {
  const o: SlirpOptions = {
    mtu: 65520,
    allowHostLoopback: false,
    enableIpv6: false,
    cidr: undefined,
    outboundAddr: undefined,
  };
  for (const item of text === '' ? [] : text.split(',')) {
    const [key, v = ''] = item.split('=', 2) as [string, string | undefined];
    const bool = (): boolean => {
      if (v !== 'true' && v !== 'false')
        throw bad(value, `${key} takes true or false`, `Write ${key}=true or ${key}=false.`);
      return v === 'true';
    };
    switch (key) {
      case 'mtu': {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1280 || n > 65521)
          throw bad(
            value,
            `mtu=${v} is not between 1280 and 65521`,
            'Give mtu=65520 (the default) or smaller.',
          );
        o.mtu = n;
        break;
      }
      case 'allow_host_loopback':
        o.allowHostLoopback = bool();
        break;
      case 'enable_ipv6':
        o.enableIpv6 = bool();
        break;
      case 'cidr':
        if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(v))
          throw bad(value, `cidr=${v} is not an IPv4 network`, 'Give e.g. cidr=10.0.2.0/24.');
        o.cidr = v;
        break;
      case 'outbound_addr':
        o.outboundAddr = v;
        break;
      case 'port_handler':
        if (v !== 'slirp4netns') {
          throw bad(
            value,
            `port_handler=${v} is not available`,
            "hutch forwards slirp4netns ports with slirp4netns itself (port_handler=slirp4netns); pasta keeps the client's address.",
          );
        }
        break;
      default:
        throw bad(
          value,
          `unknown slirp4netns option "${key}"`,
          'Options: mtu=, allow_host_loopback=, enable_ipv6=, cidr=, outbound_addr=, port_handler=slirp4netns.',
        );
    }
  }
  return o;
}

/** The mode a --network value stands for; `defaultMode` is what "", "default" and "private" mean here. */
export function parseNetworkMode(value: string, defaultMode: string): NetworkMode {
  const v = value === '' || value === 'default' || value === 'private' ? defaultMode : value;
  if (v === 'none') return { kind: 'none' };
  if (v === 'host') return { kind: 'host' };
  if (v === 'pasta' || v.startsWith('pasta:'))
    return { kind: 'pasta', options: pastaOptions(value, v.slice(6)) };
  if (v === 'slirp4netns' || v.startsWith('slirp4netns:')) {
    return { kind: 'slirp4netns', options: slirpOptions(value, v.slice(12)) };
  }
  if (v.startsWith('container:')) {
    if (v.length === 10) throw bad(value, 'no container given', 'Write --network container:NAME.');
    return { kind: 'container', ref: v.slice(10) };
  }
  if (v.startsWith('ns:')) {
    if (!v.slice(3).startsWith('/'))
      throw bad(value, 'the namespace path must be absolute', 'Write --network ns:/run/netns/NAME.');
    return { kind: 'ns', path: v.slice(3) };
  }
  const names = v.split(',');
  if (names.some((n) => !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(n))) {
    throw bad(
      value,
      'not a network mode or network name',
      'Use pasta (the default), slirp4netns, host, none, container:NAME, or networks made with hutch network create (NAME[,NAME...]).',
    );
  }
  // docker's name for the default network.
  return { kind: 'networks', names: [...new Set(names.map((n) => (n === 'bridge' ? DEFAULT_NETWORK : n)))] };
}

/**
 * What "default" means: the configured mode; else, rootful, the default
 * bridge network (kernel NAT, as docker); rootless, pasta where installed,
 * else slirp4netns.
 */
export function defaultNetworkMode(
  configured: string | undefined,
  has: (tool: string) => boolean,
  rootless: boolean,
): string {
  if (configured !== undefined) return configured;
  if (!rootless) return 'bridge';
  if (has('pasta')) return 'pasta';
  if (has('slirp4netns')) return 'slirp4netns';
  return 'none';
}

/** A mode whose network namespace hutch makes and tends (with pasta or slirp4netns). */
export function isUserMode(m: NetworkMode): m is Extract<NetworkMode, { kind: 'pasta' | 'slirp4netns' }> {
  return m.kind === 'pasta' || m.kind === 'slirp4netns';
}
