/**
 * Starting hutch-portfwd (native/portfwd.c) for a container's ports on the
 * host's loopback that admit only some clients. It runs detached, one per
 * such container, and says "ready" once it listens inside the container's
 * namespace; hutch records its pid and ends it with the container.
 */
import { portfwdPath } from '../sys/native-paths.ts';
import { HutchError } from '../util/errors.ts';
import type { PortBinding } from './ports.ts';

export async function startForwarder(netns: string, allow: string[], ports: PortBinding[]): Promise<number> {
  const { spawn } = process.getBuiltinModule('node:child_process');
  const listen = ports.map((p) => `${p.hostIp},${p.hostPort},${p.containerPort}`);
  const child = spawn(portfwdPath(), [netns, ...allow, '--', ...listen], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let said = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const ready = await new Promise<boolean>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      said += d;
      if (said.includes('ready\n')) resolve(true);
    });
    child.once('exit', () => resolve(false));
    child.once('error', (e) => {
      err += e.message;
      resolve(false);
    });
  });
  child.stdout.destroy();
  child.stderr.destroy();
  child.unref();
  if (!ready || child.pid === undefined) {
    throw new HutchError(
      'NETWORK_SETUP',
      `hutch-portfwd could not listen: ${err.trim() || 'it ended without a message'}`,
      {
        hint: 'Check that the port is free on loopback (ss -ltnp), or publish without --publish-allow.',
      },
    );
  }
  return child.pid;
}
