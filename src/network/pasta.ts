/**
 * pasta (from the passt package) connects a container's network namespace
 * to the host's network without root: it copies the host's addresses and
 * routes into the namespace (--config-net), forwards published ports with
 * the client's own address kept (connections from the host's loopback take
 * its splice path instead), and keeps its process per container. hutch
 * starts it on the namespace file before the container starts and ends it
 * by pid when the container ends.
 */
import { readFileSync } from 'node:fs';
import { HutchError } from '../util/errors.ts';
import type { PortBinding, PortProtocol } from './ports.ts';

export interface PastaRequest {
  pasta: string;
  netns: string;
  pidFile: string;
  ports: PortBinding[];
  /** Let the container reach the host's loopback at the gateway's address. */
  hostLoopback: boolean;
  /** An address in the container that pasta answers as the host's resolver (when the host's is on loopback). */
  dnsForward: string | undefined;
  /** From --network pasta:OPT,OPT. */
  extra: string[];
  /** Ports of the container's loopback forwarded to the host's (the handed-over ports, see handoff.ts). */
  toHost?: Array<{ containerPort: number; hostPort: number }>;
}

function portSpecs(ports: PortBinding[], protocol: PortProtocol): string[] {
  const mine = ports.filter((p) => p.protocol === protocol);
  if (mine.length === 0) return [protocol === 'tcp' ? '-t' : '-u', 'none'];
  return mine.flatMap((p) => [
    protocol === 'tcp' ? '-t' : '-u',
    `${p.hostIp === '' ? '' : `${p.hostIp}/`}${p.hostPort}:${p.containerPort}`,
  ]);
}

export function pastaArgs(r: PastaRequest): string[] {
  return [
    '--config-net',
    '--quiet',
    '--netns',
    r.netns,
    '--pid',
    r.pidFile,
    // As (namespace) root: pasta's default, nobody, cannot open the namespace file in hutch's 0700 run directory.
    '--runas',
    '0',
    ...portSpecs(r.ports, 'tcp'),
    ...portSpecs(r.ports, 'udp'),
    // The container's own ports are not forwarded to the host's loopback, but for handed-over ones.
    ...(r.toHost?.length
      ? r.toHost.flatMap((p) => ['-T', `${p.containerPort}:${p.hostPort}`])
      : ['-T', 'none']),
    '-U',
    'none',
    ...(r.hostLoopback ? [] : ['--no-map-gw']),
    ...(r.dnsForward ? ['--dns-forward', r.dnsForward] : []),
    ...r.extra,
  ];
}

/** pasta's messages, without its complaints that there is no syslog to write to. */
function messages(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/to syslog$/.test(l))
    .join('; ');
}

/** Starts pasta on the namespace; it puts itself in the background once ready. Returns its pid. */
export function startPasta(r: PastaRequest): number {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const res = spawnSync(r.pasta, pastaArgs(r), {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 30_000,
  });
  if (res.error || res.status !== 0) {
    const said = messages(res.stderr ?? '') || res.error?.message || `exit status ${res.status}`;
    throw new HutchError('NETWORK_SETUP', `pasta could not set up the container's network: ${said}`, {
      hint: /routable interface|No interfaces/i.test(said)
        ? "pasta copies the addresses of the host's interface with the default route, and this host has none: give it a default route, or use --network slirp4netns or --network none."
        : "Run with --log-level debug to see pasta's command line, or use --network slirp4netns.",
    });
  }
  const pid = Number(readFileSync(r.pidFile, 'utf8').trim());
  if (!(pid > 0)) throw new HutchError('NETWORK_SETUP', `pasta wrote no pid to ${r.pidFile}`);
  return pid;
}
