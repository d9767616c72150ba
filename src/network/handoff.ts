/**
 * Published TCP ports served by the container's own server from a socket in
 * the host's network namespace (native/handoff.c). Its bind() is stopped by
 * a seccomp filter and answered with a host socket bound to the published
 * address and port, so clients reach the server directly: no relay in the
 * path (host loopback speed), and the server sees every client's own
 * address, loopback ones included.
 *
 * What stays with pasta: UDP, ports with an allowlist (nothing could judge
 * clients between the host socket and the server), a container port
 * published twice, and host addresses other than every address or
 * 127.0.0.1. The container's own loopback still reaches a handed-over port:
 * pasta forwards it to the host's (-T).
 *
 * Where the container may reach the host's loopback (host.containers.internal
 * at the gateway's address), its TCP connections there are handed a socket
 * connected on the host's loopback in the same way, rather than crossing
 * pasta's tap path.
 */
import { kernelRelease as currentKernelRelease, parseKernelRelease } from '../host/kernel.ts';
import { handoffPath } from '../sys/native-paths.ts';
import type { PortBinding } from './ports.ts';
import { startReadyHelper } from './ready-helper.ts';

/** SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SETFD arrived in Linux 5.9. */
export function kernelCanHandOff(kernelRelease = currentKernelRelease()): boolean {
  const [major = 0, minor = 0] = parseKernelRelease(kernelRelease) ?? [];
  return major > 5 || (major === 5 && minor >= 9);
}

/** The ports (host ports already chosen) that hutch-handoff can serve, from a container's published ports. */
export function handoffPorts(ports: PortBinding[]): PortBinding[] {
  const perContainerPort = new Map<number, number>();
  for (const p of ports) {
    if (p.protocol === 'tcp')
      perContainerPort.set(p.containerPort, (perContainerPort.get(p.containerPort) ?? 0) + 1);
  }
  return ports.filter(
    (p) =>
      p.protocol === 'tcp' &&
      perContainerPort.get(p.containerPort) === 1 &&
      (p.hostIp === '' || p.hostIp === '0.0.0.0' || p.hostIp === '127.0.0.1'),
  );
}

/**
 * Starts hutch-handoff listening for the runtime on `socket`; returns its
 * pid. With `gateway` (the address pasta maps to the host's loopback), TCP
 * connections to it are handed over too, as loopback connections.
 */
export function startHandoff(
  socket: string,
  ports: PortBinding[],
  gateway?: string,
  resume = false,
): Promise<number> {
  const specs = ports.map((p) => `${p.hostIp},${p.hostPort},${p.containerPort}`);
  const args = [
    ...(resume ? ['--resume'] : []),
    socket,
    ...(gateway ? ['--gateway', gateway] : []),
    ...specs,
  ];
  return startReadyHelper(handoffPath(), args, {
    what: 'hutch-handoff could not start',
    hint: 'Set port_handoff = false under [network] in hutch.toml to publish through pasta alone.',
  });
}

/**
 * A running container's hutch-handoff that is gone (killed): its keeper
 * still holds the container's seccomp listeners, so a new one resumes in its
 * place (`system check --repair`). Returns the new pid and start time.
 */
export async function resumeHandoff(state: {
  handoffSocket?: string;
  handoffConnect?: boolean;
  hostGateway?: string | undefined;
  ports: PortBinding[];
}): Promise<number> {
  if (!state.handoffSocket) throw new Error('the container has no hutch-handoff');
  const gateway = state.handoffConnect ? state.hostGateway : undefined;
  return startHandoff(state.handoffSocket, handoffPorts(state.ports), gateway, true);
}
