/**
 * A container's user-mode network, start to end: a namespace file, the
 * helper (pasta or slirp4netns) on it, the published ports. attachNetwork
 * runs before the runtime creates the container, detachNetwork when the
 * container has ended (cleanup, rm, a failed start, system check). What is
 * attached is kept in the container's record, so any later command can
 * take it down.
 */
import { readFileSync, rmSync } from 'node:fs';
import { identity } from '../sys/identity.ts';
import { processName, processStart } from '../sys/process.ts';
import { lookPath, which } from '../util/which.ts';
import { HutchError } from '../util/errors.ts';
import { log } from '../util/log.ts';
import { allocatePorts } from './allocate.ts';
import { allowRules, hostAddresses, splitForAllowlist } from './allow.ts';
import { KEEP_SOURCE_ROUTES, KEEP_SOURCE_RULES, startForwarder } from './portfwd.ts';
import { readHostLink } from './hostlink.ts';
import { publishByKernel, splitForKernel, unpublishByKernel } from './kernel-publish.ts';
import { infraHelper, infraPaths, ipBatch } from './infra.ts';
import type { NetworkMode } from './mode.ts';
import { createNetns, netnsPath, removeNetns } from './netns.ts';
import { handoffPorts, kernelCanHandOff, startHandoff } from './handoff.ts';
import { startPasta } from './pasta.ts';
import { onlyLoopbackResolvers, PASTA_DNS_FORWARD } from './resolv.ts';
import { attachBridges, detachBridges } from './bridge.ts';
import type { BridgeAddress, BridgeRequest } from './bridge.ts';
import type { PortBinding } from './ports.ts';
import { SLIRP_DNS, SLIRP_GATEWAY, startSlirp } from './slirp.ts';

export interface NetworkState {
  mode: 'pasta' | 'slirp4netns' | 'bridge';
  /** The namespace file (RUNROOT/netns/ID). */
  netns: string;
  helperPid: number;
  /** The helper's start time, so a reused pid is never killed. */
  helperStart: number;
  /** The ports as published at this start (host ports chosen). */
  ports: PortBinding[];
  /** Nameservers the network provides, for when the host's are on its loopback. */
  dns: string[];
  /** Where the container reaches the host's loopback, when that is allowed. */
  hostGateway: string | undefined;
  /** On user networks: the container's address on each. */
  addresses?: BridgeAddress[];
  /** hutch-handoff (handoff.ts): its pid, start time and the socket the runtime sends the seccomp listener to. */
  handoffPid?: number;
  handoffStart?: number;
  handoffSocket?: string;
  /** It hands over connections to hostGateway too (connect() goes to it). */
  handoffConnect?: boolean;
  /** Rootful on user networks: ports published by kernel rules (kernel-publish.ts). */
  kernelNat?: boolean;
  /** hutch-portfwd, for ports on the host's loopback with an allowlist. */
  forwarderPid?: number;
  forwarderStart?: number;
}

export interface AttachRequest {
  id: string;
  runroot: string;
  mode: Extract<NetworkMode, { kind: 'pasta' | 'slirp4netns' }>;
  ports: PortBinding[];
  /** The user allows the container to reach services on the host's loopback. */
  hostLoopback: boolean;
  rootless: boolean;
  /** The host's resolv.conf text: a resolver on the host's loopback needs forwarding. */
  hostResolvConf: string;
  /** Serve published TCP ports from host sockets handed to the container's server (handoff.ts), where possible. */
  handoff?: boolean;
  /** --publish-allow, normalized: when not empty, only these clients reach the published ports. */
  allow: string[];
}

/**
 * The files of a container's network helpers. Sockets are named by the
 * short ID: a socket's path must fit in 107 bytes (sun_path), and with the
 * full ID it would not under a long runtime directory
 * (/run/user/UID/... is 40 bytes before the ID's 64).
 */
function helperFiles(
  runroot: string,
  id: string,
): Record<'pid' | 'sock' | 'log' | 'handoff' | 'keep', string> {
  const base = netnsPath(runroot, id);
  const short = netnsPath(runroot, id.slice(0, 12));
  return {
    pid: `${base}.pid`,
    sock: `${short}.sock`,
    log: `${base}.log`,
    handoff: `${short}.handoff`,
    keep: `${short}.handoff.keep`,
  };
}

/** The longest path a socket can be bound to (sun_path less its NUL). */
const SOCKET_PATH_MAX = 107;

function tool(name: string): string {
  const path = which(name);
  if (!path) {
    throw new HutchError('NETWORK_TOOL_MISSING', `--network ${name} needs ${name}, which is not installed`, {
      hint: `Install it (Debian: apt install ${name === 'pasta' ? 'passt' : name}), or use --network ${name === 'pasta' ? 'slirp4netns' : 'pasta'} or none.`,
    });
  }
  return path;
}

function hostDefaultGateway(): string | undefined {
  try {
    return defaultRoute(readFileSync('/proc/net/route', 'utf8'))?.gateway;
  } catch {
    return undefined;
  }
}

/** The host's IPv4 default route (/proc/net/route): its gateway, which pasta gives the container too, and interface. */
export function defaultRoute(routeTable: string): { gateway: string; iface: string } | undefined {
  for (const line of routeTable.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] !== '00000000' || f[7] !== '00000000' || !f[2] || !f[0]) continue;
    const n = parseInt(f[2], 16);
    return { gateway: [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.'), iface: f[0] };
  }
  return undefined;
}

export async function attachNetwork(req: AttachRequest): Promise<NetworkState> {
  const program = tool(req.mode.kind);
  const ports = await allocatePorts(req.ports, req.rootless);
  const netns = netnsPath(req.runroot, req.id);
  const files = helperFiles(req.runroot, req.id);
  createNetns(netns);
  try {
    if (req.mode.kind === 'pasta') {
      const dnsForward = onlyLoopbackResolvers(req.hostResolvConf) ? PASTA_DNS_FORWARD : undefined;
      let routeTable = '';
      try {
        routeTable = readFileSync('/proc/net/route', 'utf8');
      } catch {
        // No IPv4 routes to read: no gateway to offer.
      }
      const gateway = defaultRoute(routeTable)?.gateway;
      const host = hostAddresses(defaultRoute(routeTable)?.iface);
      const split = req.allow.length > 0 ? splitForAllowlist(ports, host) : { pasta: ports, forward: [] };
      // A runtime directory too deep for the helper's sockets leaves the ports to pasta.
      const canHandOff = req.handoff === true && files.keep.length <= SOCKET_PATH_MAX && kernelCanHandOff();
      const handed = canHandOff && req.allow.length === 0 ? handoffPorts(ports) : [];
      const handGateway = canHandOff && req.hostLoopback ? gateway : undefined;
      const handoffPid =
        handed.length > 0 || handGateway ? await startHandoff(files.handoff, handed, handGateway) : undefined;
      let pid: number;
      try {
        pid = startPasta({
          pasta: program,
          netns,
          pidFile: files.pid,
          ports: split.pasta.filter((p) => !handed.includes(p)),
          hostLoopback: req.hostLoopback,
          dnsForward,
          extra: req.mode.options,
          toHost: handed,
        });
      } catch (e) {
        if (handoffPid !== undefined) endProcess(handoffPid, processStart(handoffPid));
        throw e;
      }
      const state: NetworkState = {
        mode: 'pasta',
        netns,
        helperPid: pid,
        helperStart: processStart(pid) ?? 0,
        ports,
        dns: dnsForward ? [dnsForward] : [],
        hostGateway: req.hostLoopback ? gateway : undefined,
        ...(handoffPid !== undefined
          ? {
              handoffPid,
              handoffStart: processStart(handoffPid) ?? 0,
              handoffSocket: files.handoff,
              handoffConnect: handGateway !== undefined,
            }
          : {}),
      };
      try {
        if (req.allow.length > 0) {
          applyRules(netns, allowRules(ports, req.allow));
          if (split.forward.length > 0) {
            // Clients on the host's other addresses keep theirs too (see KEEP_SOURCE_RULES).
            const target = host.primary;
            if (target) {
              ipBatch(netns, KEEP_SOURCE_ROUTES);
              applyRules(netns, KEEP_SOURCE_RULES);
            }
            state.forwarderPid = await startForwarder(netns, req.allow, split.forward, target);
            state.forwarderStart = processStart(state.forwarderPid) ?? 0;
          }
        }
      } catch (e) {
        endProcess(pid, processStart(pid));
        endProcess(state.handoffPid, state.handoffStart);
        throw e;
      }
      return state;
    }
    const options = {
      ...req.mode.options,
      allowHostLoopback: req.mode.options.allowHostLoopback || req.hostLoopback,
    };
    const pid = await startSlirp({
      slirp4netns: program,
      netns,
      apiSocket: files.sock,
      logFile: files.log,
      options,
      ports,
    });
    return {
      mode: 'slirp4netns',
      netns,
      helperPid: pid,
      helperStart: processStart(pid) ?? 0,
      ports,
      dns: [SLIRP_DNS],
      hostGateway: options.allowHostLoopback ? SLIRP_GATEWAY : undefined,
    };
  } catch (e) {
    removeNetns(netns);
    for (const f of Object.values(files)) rmSync(f, { force: true });
    throw e;
  }
}

export interface BridgeNetworkRequest extends BridgeRequest {
  ports: PortBinding[];
  allow: string[];
  rootless: boolean;
}

/**
 * A container on user networks (bridge.ts), with its published ports
 * carried by hutch-portfwd into its namespace: clients outside the
 * allowlist are refused at accept, clients on the host's loopback arrive
 * with their own address, others from the container's loopback.
 */
export async function attachBridgeNetwork(req: BridgeNetworkRequest): Promise<NetworkState> {
  const ports = await allocatePorts(req.ports, req.rootless);
  const addresses = attachBridges(req);
  const netns = netnsPath(req.runroot, req.id);
  const state: NetworkState = {
    mode: 'bridge',
    netns,
    helperPid: 0,
    helperStart: 0,
    ports,
    dns: [addresses[0]!.gateway],
    // Rootless, the infra namespace's default gateway, which its pasta maps to the host's loopback;
    // rootful, the host's end of the infra's link (hostlink.ts): the host's own services, not its loopback.
    hostGateway: req.hostLoopback
      ? req.rootless
        ? infraHelper(req.runroot) === 'slirp4netns'
          ? SLIRP_GATEWAY
          : hostDefaultGateway()
        : readHostLink(infraPaths(req.runroot).link)?.hostAddr
      : undefined,
    addresses,
  };
  if (ports.length === 0) return state;
  try {
    // Rootful, the kernel publishes what it can route (kernel-publish.ts); the relay takes the rest.
    const link = req.rootless ? undefined : readHostLink(infraPaths(req.runroot).link);
    const { nat, relay } = link ? splitForKernel(ports) : { nat: [], relay: ports };
    if (link && nat.length > 0) {
      state.kernelNat = true;
      publishByKernel(req.id, infraPaths(req.runroot).netns, link, addresses[0]!.ip, nat);
      // Clients arrive with their own address: judged in the container's namespace, as with pasta.
      if (req.allow.length > 0) applyRules(netns, allowRules(nat, req.allow));
    }
    if (relay.length === 0) return state;
    const listen = relay.flatMap((p) =>
      p.hostIp === ''
        ? [
            { ...p, hostIp: '0.0.0.0' },
            { ...p, hostIp: '::' },
          ]
        : [p],
    );
    // Clients off the host's loopback keep their address too (see KEEP_SOURCE_RULES).
    ipBatch(netns, KEEP_SOURCE_ROUTES);
    applyRules(netns, KEEP_SOURCE_RULES);
    state.forwarderPid = await startForwarder(
      netns,
      req.allow.length > 0 ? req.allow : ['0.0.0.0/0', '::/0'],
      listen,
      addresses[0]!.ip,
    );
    state.forwarderStart = processStart(state.forwarderPid) ?? 0;
  } catch (e) {
    if (state.kernelNat) unpublishByKernel(req.id, infraPaths(req.runroot).netns);
    detachBridges(req.root, req.runroot, req.id);
    throw e;
  }
  return state;
}

/** The names of the processes hutch starts for a network: pasta (passt.avx2 and the like), slirp4netns, hutch-portfwd, hutch-handoff. */
export function isNetworkHelper(comm: string): boolean {
  return (
    comm.startsWith('pasta') ||
    comm.startsWith('passt') ||
    comm.startsWith('slirp4netns') ||
    comm === 'hutch-portfwd' ||
    comm === 'hutch-handoff'
  );
}

/** Kills pid if it is still the helper started then (same start time, a helper's name). */
function endProcess(pid: number | undefined, startedAt: number | undefined): void {
  if (pid === undefined) return;
  const start = processStart(pid);
  if (start === undefined || start !== startedAt || !isNetworkHelper(processName(pid) ?? '')) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    log.debug(`ending network helper ${pid}: ${(e as Error).message}`);
    return;
  }
  // Gone before this returns, so that whoever asks next sees no helper (the kill takes a moment).
  const until = Date.now() + 1000;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (processStart(pid) === startedAt && Date.now() < until) Atomics.wait(nap, 0, 0, 1);
}

/** nftables rules applied inside the namespace (as its owner: hutch's namespace root, or root). */
function applyRules(netns: string, rules: string): void {
  const sbin = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
  const nft = lookPath('nft', sbin);
  const nsenter = lookPath('nsenter', sbin);
  if (!('path' in nft) || !('path' in nsenter)) {
    throw new HutchError(
      'NETWORK_TOOL_MISSING',
      "--publish-allow needs nft (nftables) and nsenter, to judge clients inside the container's network",
      {
        hint: 'Install them (Debian: apt install nftables util-linux).',
      },
    );
  }
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync(nsenter.path, [`--net=${netns}`, nft.path, '-f', '-'], {
    input: rules,
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    throw new HutchError(
      'NETWORK_SETUP',
      `the --publish-allow rules could not be applied: ${(r.stderr || r.error?.message || '').trim()}`,
    );
  }
}

/** Ends the helpers and removes the namespace file and the helper's files (and, on user networks, the leases). Safe to repeat. */
export function detachNetwork(
  paths: { root: string; runroot: string },
  id: string,
  state: NetworkState | undefined,
): void {
  const { runroot } = paths;
  // Before the bridges: the last container takes the infra namespace, and its rules, along.
  if (state?.kernelNat || (!state && !identity().rootless)) unpublishByKernel(id, infraPaths(runroot).netns);
  if (state?.mode === 'bridge') detachBridges(paths.root, runroot, id);
  if (state) {
    endProcess(state.forwarderPid, state.forwarderStart);
    endProcess(state.handoffPid, state.handoffStart);
    endProcess(state.helperPid, state.helperStart);
  }
  removeNetns(netnsPath(runroot, id));
  for (const f of Object.values(helperFiles(runroot, id))) rmSync(f, { force: true });
}
