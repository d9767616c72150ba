/**
 * A container on user networks: its own namespace, an address leased on
 * each network, a veth pair per network between its namespace (eth0, eth1,
 * ...) and the network's bridge in the infra namespace, the default route
 * through the first network's gateway, which also answers DNS (hutch-dns).
 * Leases are released, and the infra namespace taken down with the last of
 * them, when the container ends.
 */
import { dnsChanged } from './dns.ts';
import {
  ensureBridge,
  ensureInfraLocked,
  infraPaths,
  ipBatch,
  removeInfraLocked,
  withInfraLock,
} from './infra.ts';
import { createNetns, netnsPath, removeNetns } from './netns.ts';
import { NetworkStore, pickAddress, pickAddress6 } from './store.ts';
import type { NetworkRecord } from './store.ts';

export interface BridgeAttachment {
  net: NetworkRecord;
  aliases: string[];
  ip: string | undefined;
}

export interface BridgeRequest {
  id: string;
  root: string;
  runroot: string;
  attachments: BridgeAttachment[];
  /** What the container answers to on each network besides its aliases: name, short ID, hostname. */
  names: string[];
  /** The infra namespace's pasta maps its gateway to the host's loopback (applies when the namespace is made). */
  hostLoopback: boolean;
  /** What joins the infra namespace to the outside, rootless ([network] user_networks_uplink; default pasta). */
  uplink?: 'pasta' | 'slirp4netns';
}

export interface BridgeAddress {
  network: string;
  ip: string;
  prefix: number;
  gateway: string;
  /** The interface is eth{index}. */
  index?: number;
  /** On a network with IPv6: the container's IPv6 address, prefix and gateway. */
  ip6?: string;
  prefix6?: number;
  gateway6?: string;
}

function vethName(id: string, i: number): string {
  return `vh${id.slice(0, 10)}${i}`;
}

export function attachBridges(req: BridgeRequest): BridgeAddress[] {
  const store = new NetworkStore(req.root);
  const cns = netnsPath(req.runroot, req.id);
  createNetns(cns);
  const addresses: BridgeAddress[] = [];
  try {
    withInfraLock(req.runroot, () => {
      const infra = ensureInfraLocked(req.runroot, req.hostLoopback, req.uplink);
      req.attachments.forEach((a, i) => addresses.push(plug(store, infra, cns, req, a, i)));
      dnsChanged(req.runroot, store, infra);
    });
  } catch (e) {
    detachBridges(req.root, req.runroot, req.id);
    throw e;
  }
  return addresses;
}

/** One network into a container's namespace, as interface eth{index}; the caller holds the infra lock. */
function plug(
  store: NetworkStore,
  infra: string,
  cns: string,
  req: Pick<BridgeRequest, 'id' | 'names'>,
  a: BridgeAttachment,
  index: number,
): BridgeAddress {
  const { ip, ip6 } = store.locked(() => {
    const leases = store.readLeases(a.net.name);
    const chosen = pickAddress(a.net, leases, a.ip);
    const chosen6 = pickAddress6(a.net, leases);
    leases[req.id] = {
      ip: chosen,
      ...(chosen6 ? { ip6: chosen6 } : {}),
      names: [...new Set([...req.names, ...a.aliases])],
    };
    store.writeLeases(a.net.name, leases);
    return { ip: chosen, ip6: chosen6 };
  });
  const v6 = a.net.ipv6;
  const prefix6 = v6 ? Number(v6.subnet.split('/')[1]) : 0;
  const prefix = Number(a.net.subnet.split('/')[1]);
  ensureBridge(infra, a.net);
  const veth = vethName(req.id, index);
  const link = [
    `link add ${veth} type veth peer name eth${index} netns ${cns}`,
    `link set ${veth} master ${a.net.bridge}`,
    `link set ${veth} up`,
  ];
  try {
    ipBatch(infra, link);
  } catch (e) {
    // One left by a start killed a moment ago, whose namespace is not gone yet.
    if (!/File exists/.test((e as Error).message)) throw e;
    ipBatch(infra, [`link del ${veth}`, ...link]);
  }
  ipBatch(cns, [
    `addr add ${ip}/${prefix} dev eth${index}`,
    // nodad: the address is hutch's to give; duplicate detection would only hold it back a second.
    ...(v6 && ip6 ? [`addr add ${ip6}/${prefix6} dev eth${index} nodad`] : []),
    `link set eth${index} up`,
    ...(index === 0 ? [`route add default via ${a.net.gateway}`] : []),
    ...(index === 0 && v6 ? [`route add ::/0 via ${v6.gateway}`] : []),
  ]);
  return {
    network: a.net.name,
    ip,
    prefix,
    gateway: a.net.gateway,
    index,
    ...(v6 && ip6 ? { ip6, prefix6, gateway6: v6.gateway } : {}),
  };
}

/** `network connect` of a running container: one more interface, lease and name. */
export function plugRunning(
  root: string,
  runroot: string,
  id: string,
  names: string[],
  a: BridgeAttachment,
  index: number,
  hostLoopback: boolean,
  uplink?: 'pasta' | 'slirp4netns',
): BridgeAddress {
  const store = new NetworkStore(root);
  return withInfraLock(runroot, () => {
    const infra = ensureInfraLocked(runroot, hostLoopback, uplink);
    const address = plug(store, infra, netnsPath(runroot, id), { id, names }, a, index);
    dnsChanged(runroot, store, infra);
    return address;
  });
}

/** `network disconnect` of a running container: its interface on that network goes, with the lease. */
export function unplugRunning(
  root: string,
  runroot: string,
  id: string,
  network: string,
  index: number,
): void {
  const store = new NetworkStore(root);
  withInfraLock(runroot, () => {
    const infra = infraPaths(runroot).netns;
    try {
      ipBatch(infra, [`link del ${vethName(id, index)}`]);
    } catch (e) {
      if (!/Cannot find device/.test((e as Error).message)) throw e;
    }
    store.locked(() => {
      const leases = Object.fromEntries(Object.entries(store.readLeases(network)).filter(([h]) => h !== id));
      store.writeLeases(network, leases);
    });
    dnsChanged(runroot, store, infra);
  });
}

/** Releases the container's leases and namespace; the infra namespace goes with the last lease. Idempotent. */
export function detachBridges(root: string, runroot: string, id: string): void {
  const store = new NetworkStore(root);
  removeNetns(netnsPath(runroot, id));
  withInfraLock(runroot, () => {
    let left = 0;
    store.locked(() => {
      for (const net of store.list()) {
        const all = store.readLeases(net.name);
        const leases = Object.fromEntries(Object.entries(all).filter(([holder]) => holder !== id));
        if (Object.keys(leases).length !== Object.keys(all).length) store.writeLeases(net.name, leases);
        left += Object.keys(leases).length;
      }
    });
    if (left === 0) removeInfraLocked(runroot);
    else dnsChanged(runroot, store, infraPaths(runroot).netns);
  });
}

/** At create and connect: a fixed --ip must be a host address of the network (whether it is free, start decides). */
export function checkAttachable(net: NetworkRecord, ip: string | undefined): void {
  if (ip !== undefined) pickAddress(net, {}, ip);
}
