/**
 * Host ports for a start: every binding gets a concrete, free port. hutch
 * binds each port itself first, so a port that is taken or privileged is
 * refused with its own clear message (pasta would only say that it could not
 * bind "any port"), and `-p 80` / `-P` / host ranges get a port the kernel
 * says is free.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { HutchError, errnoCode } from '../util/errors.ts';
import type { PortBinding, PortProtocol } from './ports.ts';
import { hostSide } from './ports.ts';

/** The lowest port an unprivileged process may bind (net.ipv4.ip_unprivileged_port_start). */
export function unprivilegedPortStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
  } catch {
    return 1024;
  }
}

/** Binds ip:port (port 0: any) and releases it; gives the port bound, or the bind's error code. */
async function tryBind(ip: string, port: number, protocol: PortProtocol): Promise<number | string> {
  if (ip !== '') return bindOnce(ip, port, protocol);
  const got = await bindOnce('::', port, protocol);
  // A host without IPv6: every address is every IPv4 address.
  return got === 'EAFNOSUPPORT' || got === 'EADDRNOTAVAIL' ? bindOnce('0.0.0.0', port, protocol) : got;
}

function bindOnce(host: string, port: number, protocol: PortProtocol): Promise<number | string> {
  if (protocol === 'udp') {
    return new Promise((resolve) => {
      const s = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
      s.once('error', (e) => {
        s.close();
        resolve(errnoCode(e) ?? 'EINVAL');
      });
      s.bind({ address: host, port, exclusive: true }, () => {
        const got = s.address().port;
        s.close(() => resolve(got));
      });
    });
  }
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (e) => resolve(errnoCode(e) ?? 'EINVAL'));
    // ipv6Only false on '::': the port must be free on IPv4 too, as pasta binds both.
    s.listen({ host, port, exclusive: true, ipv6Only: false }, () => {
      const a = s.address();
      const got = typeof a === 'object' && a ? a.port : port;
      s.close(() => resolve(got));
    });
  });
}

function refusal(b: PortBinding, port: number, code: string, rootless: boolean): HutchError {
  const where = hostSide({ ...b, hostPort: port });
  if (code === 'EADDRINUSE') {
    return new HutchError(
      'PORT_IN_USE',
      `cannot publish ${where}/${b.protocol}: the port is already in use`,
      {
        hint: `Choose another host port (-p OTHER:${b.containerPort}), or stop what listens there (ss -ltnup | grep :${port}).`,
      },
    );
  }
  if (code === 'EACCES' && rootless) {
    const start = unprivilegedPortStart();
    return new HutchError(
      'PORT_PRIVILEGED',
      `cannot publish ${where}/${b.protocol}: ports below ${start} need root (net.ipv4.ip_unprivileged_port_start=${start})`,
      {
        hint: `Use a host port of ${start} or above (e.g. -p ${port + 8000 <= 65535 ? port + 8000 : start}:${b.containerPort}), or let users bind it, as root: echo net.ipv4.ip_unprivileged_port_start=${port} > /etc/sysctl.d/50-hutch-ports.conf && sysctl --system.`,
      },
    );
  }
  if (code === 'EADDRNOTAVAIL') {
    return new HutchError(
      'PORT_ADDRESS',
      `cannot publish ${where}/${b.protocol}: ${b.hostIp} is not an address of this host`,
      {
        hint: "Give one of the host's addresses (ip -br addr), or leave the address out to listen on all of them.",
      },
    );
  }
  return new HutchError('PORT_BIND', `cannot publish ${where}/${b.protocol}: ${code}`);
}

/**
 * Concrete bindings for a start, in order. Fixed ports must be free; port 0
 * takes a free port from the kernel; a host range takes its first free port.
 */
export async function allocatePorts(bindings: PortBinding[], rootless: boolean): Promise<PortBinding[]> {
  const out: PortBinding[] = [];
  const used = new Set<string>();
  for (const b of bindings) {
    const { hostPortEnd, ...rest } = b;
    let chosen: number | undefined;
    let lastCode = 'EADDRINUSE';
    const candidates =
      b.hostPort === 0
        ? [0]
        : Array.from({ length: (hostPortEnd ?? b.hostPort) - b.hostPort + 1 }, (_, i) => b.hostPort + i);
    for (const want of candidates) {
      if (used.has(`${b.hostIp}|${want}|${b.protocol}`)) continue;
      const got = await tryBind(b.hostIp, want, b.protocol);
      if (typeof got === 'number') {
        chosen = got;
        break;
      }
      lastCode = got;
      if (got !== 'EADDRINUSE') break;
    }
    if (chosen === undefined) {
      if (hostPortEnd !== undefined && lastCode === 'EADDRINUSE') {
        throw new HutchError(
          'PORT_IN_USE',
          `cannot publish container port ${b.containerPort}/${b.protocol}: every host port from ${b.hostPort} to ${hostPortEnd} is in use`,
          { hint: 'Give a wider or another range.' },
        );
      }
      throw refusal(b, b.hostPort, lastCode, rootless);
    }
    used.add(`${b.hostIp}|${chosen}|${b.protocol}`);
    out.push({ ...rest, hostPort: chosen });
  }
  return out;
}
