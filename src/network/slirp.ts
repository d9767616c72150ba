/**
 * slirp4netns, for hosts without pasta or when asked for: a user-mode TCP/IP
 * stack behind a tap device in the container's namespace (10.0.2.100, the
 * host's loopback at 10.0.2.2 when allowed, a resolver at 10.0.2.3).
 * Published ports are added through its API socket; connections reach the
 * container from 10.0.2.2, so the client's address is not kept (pasta keeps
 * it). It runs in the foreground: hutch starts it detached, with a log file
 * for its messages, and waits for its ready signal.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { HutchError } from '../util/errors.ts';
import type { SlirpOptions } from './mode.ts';
import type { PortBinding } from './ports.ts';

export const SLIRP_GATEWAY = '10.0.2.2';
export const SLIRP_DNS = '10.0.2.3';

export interface SlirpRequest {
  slirp4netns: string;
  netns: string;
  apiSocket: string;
  logFile: string;
  options: SlirpOptions;
  ports: PortBinding[];
}

export function slirpArgs(r: SlirpRequest): string[] {
  const o = r.options;
  return [
    '--configure',
    `--mtu=${o.mtu}`,
    ...(o.allowHostLoopback ? [] : ['--disable-host-loopback']),
    ...(o.enableIpv6 ? ['--enable-ipv6'] : []),
    ...(o.cidr ? [`--cidr=${o.cidr}`] : []),
    ...(o.outboundAddr ? [`--outbound-addr=${o.outboundAddr}`] : []),
    '--api-socket',
    r.apiSocket,
    '--ready-fd',
    '3',
    '--netns-type=path',
    r.netns,
    'tap0',
  ];
}

function logText(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join('; ');
  } catch {
    return '';
  }
}

/** Starts slirp4netns and adds the port forwards; returns its pid. */
export async function startSlirp(r: SlirpRequest): Promise<number> {
  for (const p of r.ports) {
    if (p.hostIp.includes(':')) {
      throw new HutchError('BAD_FLAG', `slirp4netns publishes on IPv4 addresses only, not ${p.hostIp}`, {
        hint: 'Publish on an IPv4 address, or use --network pasta.',
      });
    }
  }
  const { spawn } = process.getBuiltinModule('node:child_process');
  const log = openSync(r.logFile, 'w', 0o600);
  const child = spawn(r.slirp4netns, slirpArgs(r), {
    detached: true,
    stdio: ['ignore', log, log, 'pipe'],
  });
  closeSync(log);
  const ready = child.stdio[3] as NodeJS.ReadableStream;
  const ok = await new Promise<boolean>((resolve) => {
    ready.once('data', () => resolve(true));
    child.once('exit', () => resolve(false));
    child.once('error', () => resolve(false));
  });
  (ready as unknown as { destroy(): void }).destroy();
  child.unref();
  if (!ok || child.pid === undefined) {
    throw new HutchError(
      'NETWORK_SETUP',
      `slirp4netns could not set up the container's network: ${logText(r.logFile) || 'it ended without a message'}`,
      {
        hint: 'Use --network pasta, or --network none.',
      },
    );
  }
  for (const p of r.ports) {
    await apiCall(r.apiSocket, {
      execute: 'add_hostfwd',
      arguments: {
        proto: p.protocol,
        host_addr: p.hostIp === '' ? '0.0.0.0' : p.hostIp,
        host_port: p.hostPort,
        guest_port: p.containerPort,
      },
    }).catch((e: Error) => {
      process.kill(child.pid!, 'SIGKILL');
      throw new HutchError(
        'NETWORK_SETUP',
        `slirp4netns could not publish ${p.hostPort}/${p.protocol}: ${e.message}`,
      );
    });
  }
  return child.pid;
}

/** One request on slirp4netns's API socket (one JSON object each way per connection). */
function apiCall(socket: string, request: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let reply = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.end(JSON.stringify(request)));
    s.on('data', (d: string) => (reply += d));
    s.on('error', reject);
    s.on('close', () => {
      try {
        const r = JSON.parse(reply) as { return?: unknown; error?: { desc?: string } };
        if (r.error) reject(new Error(r.error.desc ?? JSON.stringify(r.error)));
        else resolve(r.return);
      } catch {
        reject(new Error(`unreadable reply ${JSON.stringify(reply)}`));
      }
    });
  });
}
