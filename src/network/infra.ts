/**
 * The user's network namespace for user networks: RUNROOT/netns/infra, made
 * on first use and joined to the outside: rootless by its own pasta,
 * rootful by a veth pair to the host and the kernel's NAT (hostlink.ts). It holds one
 * bridge per network in use, the NAT to the outside (nftables, in a
 * namespace the user owns), and the name server (hutch-dns). Each container
 * on a user network gets a veth pair: eth0 (eth1, ...) in its own namespace,
 * the other end on the network's bridge here. When the last container
 * leaves, the namespace and its helpers go.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../util/fs-atomic.ts';
import { join } from 'node:path';
import { identity } from '../sys/identity.ts';
import { withLock } from '../sys/lock.ts';
import { processName, processStart } from '../sys/process.ts';
import { HutchError } from '../util/errors.ts';
import { log } from '../util/log.ts';
import { which } from '../util/which.ts';
import { createNetns, netnsDir, removeNetns } from './netns.ts';
import { startPasta } from './pasta.ts';
import { hostLinkUp, linkToHost, unlinkFromHost } from './hostlink.ts';
import { runTool, sbinTool } from './sbin.ts';
import type { NetworkRecord } from './store.ts';

export function infraPaths(runroot: string): {
  netns: string;
  pid: string;
  lock: string;
  dnsPid: string;
  records: string;
  link: string;
} {
  const dir = netnsDir(runroot);
  return {
    netns: join(dir, 'infra'),
    pid: join(dir, 'infra.pid'),
    lock: join(dir, 'infra.lock'),
    dnsPid: join(dir, 'infra-dns.pid'),
    records: join(dir, 'infra-dns.records'),
    link: join(dir, 'infra.link'),
  };
}

/** A pid from a file, if that process still lives and has one of the given names. */
export function livePid(file: string, names: (comm: string) => boolean): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    // A zombie still has its name; only a live process counts.
    return pid > 0 && processStart(pid) !== undefined && names(processName(pid) ?? '') ? pid : undefined;
  } catch {
    return undefined;
  }
}

const isPasta = (c: string): boolean => c.startsWith('pasta') || c.startsWith('passt');
const isInfraHelper = (c: string): boolean => isPasta(c) || c === 'slirp4netns';

/** Which helper joins the user networks' namespace to the outside, if one runs. */
export function infraHelper(runroot: string): 'pasta' | 'slirp4netns' | undefined {
  const pid = livePid(infraPaths(runroot).pid, isInfraHelper);
  if (pid === undefined) return undefined;
  return processName(pid) === 'slirp4netns' ? 'slirp4netns' : 'pasta';
}

/**
 * Where pasta is not installed: slirp4netns joins the namespace to the
 * outside (NAT at 10.0.2.0/24, the host's loopback at 10.0.2.2 when
 * allowed). It configures tap0 before it reports ready; hutch waits for the
 * address, synchronously, as the callers hold the infra lock.
 */
function startInfraSlirp(slirp: string, p: ReturnType<typeof infraPaths>, hostLoopback: boolean): void {
  const { spawn } = process.getBuiltinModule('node:child_process');
  const log = openSync(`${p.pid}.log`, 'w', 0o600);
  const args = [
    '--configure',
    '--mtu=65520',
    ...(hostLoopback ? [] : ['--disable-host-loopback']),
    '--netns-type=path',
    p.netns,
    'tap0',
  ];
  const child = spawn(slirp, args, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.on('error', () => {});
  child.unref();
  if (child.pid === undefined) throw new HutchError('NETWORK_SETUP', 'slirp4netns could not be started');
  writeFileAtomic(p.pid, `${child.pid}\n`, 0o600, { durable: false });
  const until = Date.now() + 10_000;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let up = '';
    try {
      up = inNetns(p.netns, [sbinTool('ip', 'iproute2'), '-o', '-4', 'addr', 'show', 'tap0']);
    } catch {
      // Not made yet.
    }
    if (/ inet /.test(up)) return;
    if (Date.now() > until || processStart(child.pid) === undefined) {
      throw new HutchError(
        'NETWORK_SETUP',
        `slirp4netns did not set up the user networks' namespace: ${readFileSync(`${p.pid}.log`, 'utf8').trim() || 'no message'}`,
      );
    }
    Atomics.wait(nap, 0, 0, 10);
  }
}

/** Runs a command inside a network namespace (hutch owns it: its user namespace's root, or root). */
export function inNetns(netns: string, argv: string[], input?: string): string {
  return runTool([sbinTool('nsenter', 'util-linux'), `--net=${netns}`, ...argv], input);
}

/** `ip -batch -` inside a namespace. */
export function ipBatch(netns: string, lines: string[]): void {
  inNetns(netns, [sbinTool('ip', 'iproute2'), '-batch', '-'], lines.join('\n') + '\n');
}

/**
 * The infra namespace, made if missing (or if its pasta died: then the old
 * one is taken down and a new one made; containers on it lose their way out
 * until they restart). The caller holds the infra lock.
 */
export function ensureInfraLocked(
  runroot: string,
  hostLoopback: boolean,
  uplink: 'pasta' | 'slirp4netns' | undefined,
): string {
  const p = infraPaths(runroot);
  if (!identity().rootless) {
    if (existsSync(p.netns) && hostLinkUp(p.link)) return p.netns;
    removeInfraLocked(runroot);
    createNetns(p.netns);
    try {
      linkToHost(p.netns, p.link, runroot);
      enableForwarding(p.netns);
    } catch (e) {
      removeInfraLocked(runroot);
      throw e;
    }
    return p.netns;
  }
  const running = existsSync(p.netns) ? livePid(p.pid, isInfraHelper) : undefined;
  if (running !== undefined) {
    const argv = readFileSync(`/proc/${running}/cmdline`, 'utf8').split('\0');
    if (hostLoopback && (argv.includes('--no-map-gw') || argv.includes('--disable-host-loopback'))) {
      throw new HutchError(
        'NO_HOST_GATEWAY',
        "the user networks' namespace was made before the host's loopback was opened to user networks (host_loopback)",
        {
          hint: 'It applies when the namespace is next made: stop every container on a user network, then start this one.',
        },
      );
    }
    return p.netns;
  }
  // pasta unless told otherwise ([network] user_networks_uplink) or not installed.
  const pasta = uplink === 'slirp4netns' ? undefined : which('pasta');
  const slirp = pasta ? undefined : which('slirp4netns');
  if (!pasta && !slirp) {
    throw new HutchError(
      'NETWORK_TOOL_MISSING',
      'user networks reach the outside through pasta or slirp4netns, and neither is installed',
      {
        hint: 'Install pasta (Debian: apt install passt), or slirp4netns.',
      },
    );
  }
  removeNetns(p.netns);
  createNetns(p.netns);
  try {
    if (slirp) {
      startInfraSlirp(slirp, p, hostLoopback);
      enableForwarding(p.netns);
      return p.netns;
    }
    startPasta({
      pasta: pasta!,
      netns: p.netns,
      pidFile: p.pid,
      ports: [],
      hostLoopback,
      // hutch-dns asks the host's resolvers from the host's namespace: pasta need not answer DNS.
      dnsForward: undefined,
      extra: [],
    });
    // Containers' packets are forwarded from their bridge out through pasta's interface.
    enableForwarding(p.netns);
  } catch (e) {
    removeInfraLocked(runroot);
    throw e;
  }
  return p.netns;
}

/** IPv4 and IPv6 forwarding in the infra namespace (its own sysctls: the host's are not touched). */
function enableForwarding(netns: string): void {
  inNetns(netns, [
    '/bin/sh',
    '-c',
    'echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null; true',
  ]);
}

/** The bridge of a network, its gateway addresses, and its NAT (or, internal, no way out). Idempotent. */
export function ensureBridge(infra: string, net: NetworkRecord): void {
  const prefix = net.subnet.split('/')[1];
  const b = net.bridge;
  const v6 = net.ipv6;
  try {
    ipBatch(infra, [
      `link add ${b} type bridge`,
      `addr add ${net.gateway}/${prefix} dev ${b}`,
      ...(v6 ? [`addr add ${v6.gateway}/${v6.subnet.split('/')[1]} dev ${b} nodad`] : []),
      `link set ${b} up`,
    ]);
  } catch (e) {
    if (!/File exists/.test((e as Error).message)) throw e;
  }
  // Both families in one table: the internal rules hold for IPv6 too, and IPv6 is masqueraded as IPv4 is.
  const table = `hutch_${b}`;
  const rules = net.internal
    ? [
        // Only among the network's own containers: nothing in, nothing out.
        `    iifname "${b}" oifname != "${b}" drop`,
        `    oifname "${b}" iifname != "${b}" drop`,
      ]
    : [];
  inNetns(
    infra,
    [sbinTool('nft', 'nftables'), '-f', '-'],
    [
      `table inet ${table}`,
      `delete table inet ${table}`,
      `table inet ${table} {`,
      '  chain forward {',
      '    type filter hook forward priority 0; policy accept;',
      ...rules,
      '  }',
      ...(net.internal
        ? []
        : [
            '  chain postrouting {',
            '    type nat hook postrouting priority 100; policy accept;',
            `    ip saddr ${net.subnet} oifname != "${b}" masquerade`,
            ...(v6 ? [`    ip6 saddr ${v6.subnet} oifname != "${b}" masquerade`] : []),
            '  }',
          ]),
      '}',
      '',
    ].join('\n'),
  );
}

/** Takes the infra namespace down: its pasta, its name server, the file. The caller holds the lock. */
export function removeInfraLocked(runroot: string): void {
  const p = infraPaths(runroot);
  for (const [file, names] of [
    [p.pid, isInfraHelper],
    [p.dnsPid, (c: string) => c === 'hutch-dns'],
  ] as const) {
    const pid = livePid(file, names);
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (e) {
        log.debug(`ending ${pid}: ${(e as Error).message}`);
      }
    }
    rmSync(file, { force: true });
  }
  rmSync(p.records, { force: true });
  rmSync(`${p.pid}.log`, { force: true });
  rmSync(`${p.dnsPid}.log`, { force: true });
  unlinkFromHost(p.link);
  removeNetns(p.netns);
}

export function withInfraLock<T>(runroot: string, fn: () => T): T {
  mkdirSync(netnsDir(runroot), { recursive: true, mode: 0o700 });
  return withLock(infraPaths(runroot).lock, fn);
}
