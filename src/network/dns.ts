/**
 * Names on user networks: hutch-dns (native/dns.c) runs in the infra
 * namespace, answers on each network's gateway address with the names of
 * the containers on that network only (name, short ID, hostname, aliases),
 * and forwards every other query to the host's resolvers. What it answers
 * is a records file hutch rewrites whenever a lease changes, then SIGHUP; it
 * keeps no state of its own, so killing it and starting it again (the next
 * change does) loses nothing.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../sys/native-paths.ts';
import { processStart } from '../sys/process.ts';
import { writeFileAtomic } from '../util/fs-atomic.ts';
import { log } from '../util/log.ts';
import { infraPaths, livePid, removeInfraLocked, withInfraLock } from './infra.ts';
import { nameservers } from './resolv.ts';
import { NetworkStore } from './store.ts';

/** The records file: `listen GATEWAY [internal]` per network in use, `host GATEWAY NAME IP` per name and address (IPv4 or IPv6). */
export function dnsRecords(store: NetworkStore): string {
  const lines: string[] = [];
  for (const net of store.list()) {
    const leases = Object.values(store.readLeases(net.name));
    if (leases.length === 0) continue;
    lines.push(`listen ${net.gateway}${net.internal ? ' internal' : ''}`);
    for (const l of leases) {
      for (const n of l.names) {
        lines.push(`host ${net.gateway} ${n} ${l.ip}`);
        if (l.ip6) lines.push(`host ${net.gateway} ${n} ${l.ip6}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * The host's IPv4 resolvers, those on its loopback included: hutch-dns asks
 * them from the host's network namespace (native/dns.c).
 */
export function upstreams(hostResolvConf: string): string[] {
  return nameservers(hostResolvConf).filter((s) => /^\d+\.\d+\.\d+\.\d+$/.test(s));
}

const isDns = (c: string): boolean => c === 'hutch-dns';

/** Rewrites the records and has hutch-dns read them, starting it if it is not running. The caller holds the infra lock. */
export function dnsChanged(runroot: string, store: NetworkStore, infra: string): void {
  const p = infraPaths(runroot);
  writeFileAtomic(p.records, dnsRecords(store), 0o600, { durable: false });
  const pid = livePid(p.dnsPid, isDns);
  if (pid !== undefined) {
    process.kill(pid, 'SIGHUP');
    return;
  }
  let resolv = '';
  try {
    resolv = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // None: names not on a user network get SERVFAIL.
  }
  startDns(p.records, p.dnsPid, infra, upstreams(resolv));
}

/** Why the name server should run and does not, or undefined when all is well. */
export function nameServerDown(root: string, runroot: string): string | undefined {
  const store = new NetworkStore(root);
  const leases = store.list().reduce((n, net) => n + Object.keys(store.readLeases(net.name)).length, 0);
  if (leases === 0) return undefined;
  const p = infraPaths(runroot);
  if (!existsSync(p.netns))
    return `the user networks' namespace is gone while ${leases} address(es) are leased`;
  return livePid(p.dnsPid, isDns) === undefined
    ? `hutch-dns is not running while ${leases} address(es) are leased`
    : undefined;
}

/** The user networks' namespace (and its pasta and name server) left with no address leased: a killed start's. */
export function idleInfra(root: string, runroot: string): boolean {
  const store = new NetworkStore(root);
  const leases = store.list().reduce((n, net) => n + Object.keys(store.readLeases(net.name)).length, 0);
  const p = infraPaths(runroot);
  return (
    leases === 0 &&
    (existsSync(p.netns) ||
      livePid(p.pid, (c) => c.startsWith('pasta') || c.startsWith('passt') || c === 'slirp4netns') !==
        undefined)
  );
}

export function removeIdleInfra(root: string, runroot: string): void {
  withInfraLock(runroot, () => {
    if (idleInfra(root, runroot)) removeInfraLocked(runroot);
  });
}

/** Starts the name server again from its records (system check --repair). */
export function restartNameServer(root: string, runroot: string): void {
  const p = infraPaths(runroot);
  if (!existsSync(p.netns)) return;
  withInfraLock(runroot, () => dnsChanged(runroot, new NetworkStore(root), p.netns));
}

function startDns(records: string, pidFile: string, infra: string, up: string[]): void {
  const { spawn } = process.getBuiltinModule('node:child_process');
  const logFile = `${pidFile}.log`;
  const out = openSync(logFile, 'w', 0o600);
  const child = spawn(join(packageRoot(), 'native/build/hutch-dns'), ['--netns', infra, records, ...up], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  child.on('error', () => {});
  child.unref();
  if (child.pid === undefined) {
    log.warn(
      'the name server of user networks (hutch-dns) could not start: containers resolve only through /etc/hosts',
    );
    return;
  }
  writeFileAtomic(pidFile, `${child.pid}\n`, 0o600, { durable: false });
  // Ready within milliseconds; a container asking before that retries, as resolvers do.
  const until = Date.now() + 2000;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const said = readFileSync(logFile, 'utf8');
    if (said.includes('ready')) break;
    if (Date.now() > until || processStart(child.pid) === undefined) {
      log.warn(`the name server of user networks (hutch-dns) did not start: ${said.trim() || 'no message'}`);
      rmSync(pidFile, { force: true });
      break;
    }
    Atomics.wait(nap, 0, 0, 5);
  }
}
