/**
 * Networking, hutch against podman, each with its own default rootless
 * network (hutch: pasta, published TCP ports handed to the container's
 * server; Debian's podman 4.3: slirp4netns, ports through rootlessport), by
 * iperf3 (Debian's, mounted into the busybox image read-only with the
 * host's libraries), one TCP stream for 5 seconds, Gbit/s as the receiver
 * counted it:
 *
 * - net-host-to-container: the server in a container, published on
 *   127.0.0.1, the client on the host. Target: hutch at least 1.5x podman.
 * - net-container-to-host: the server on the host's loopback, the client in
 *   a container that may reach it (hutch: host.containers.internal; podman:
 *   slirp4netns:allow_host_loopback=true, 10.0.2.2). Target: 1.5x.
 * - net-container-to-container: both in containers on one user network
 *   (`network create`), the client naming the server. Target: at least
 *   podman.
 *
 * The containers (and the host's server) start once, in setup; every round
 * is one iperf3 client run.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CmdSpec, Scenario, ScenarioContext } from '../types.ts';
import { hutch, image, podman, pullBoth, removeAll } from './containers.ts';

const SECONDS = 5;
const IPERF = '/usr/bin/iperf3';
/** iperf3 and the libraries it loads, from the host, at the paths the dynamic loader looks in. */
const MOUNT_IPERF = ['-v', '/usr:/usr:ro', '-v', '/usr/lib64:/lib64:ro', '-v', '/usr/lib:/lib:ro'];
const PORTS = { hutch: 18401, podman: 18402, host: 18403 };

function client(
  engine: 'hutch' | 'podman' | 'host',
  target: string,
  port = 5201,
  seconds = SECONDS,
): CmdSpec {
  const iperf = [IPERF, '-c', target, '-p', String(port), '-t', String(seconds), '-J'];
  if (engine === 'host') return { argv: iperf, capture: true };
  const exec =
    engine === 'hutch' ? hutch('exec', 'iperf-client', ...iperf) : podman('exec', 'iperf-client', ...iperf);
  return { argv: exec, capture: true };
}

/** Gbit/s the receiver counted, from iperf3's JSON report. */
function gbits(stdout: string, engine: string): number {
  let report: { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
  try {
    report = JSON.parse(stdout) as typeof report;
  } catch {
    throw new Error(`${engine}: iperf3 printed no report: ${stdout.slice(0, 200)}`);
  }
  const bps = report.end?.sum_received?.bits_per_second;
  if (report.error || !bps)
    throw new Error(`${engine}: iperf3: ${report.error ?? 'no throughput in its report'}`);
  return bps / 1e9;
}

/** Runs a one-second `probe` until iperf3 reaches its server (it may still be starting); throws after a minute. */
async function reachable(ctx: ScenarioContext, probe: CmdSpec): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      gbits(ctx.run(probe).stdout, 'probe');
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    await sleep(250);
  }
}

const server = (port = 5201): string[] => [IPERF, '-s', '-p', String(port)];

function scenario(
  name: string,
  description: string,
  ratioMin: number,
  setup: (ctx: ScenarioContext) => Promise<void>,
  hutchCmd: CmdSpec,
  peerCmd: CmdSpec,
  teardown: (ctx: ScenarioContext) => void = removeAll,
): Scenario {
  return {
    name,
    description,
    rounds: 5,
    warmup: 1,
    registry: true,
    setup,
    teardown,
    hutch: hutchCmd,
    peer: peerCmd,
    measure: (s) => gbits(s.stdout, s.engine),
    target: { metric: 'throughput', ratioMin },
  };
}

function hostToContainer(): Scenario {
  const h = client('host', '127.0.0.1', PORTS.hutch);
  const p = client('host', '127.0.0.1', PORTS.podman);
  return scenario(
    'net-host-to-container',
    'iperf3 from the host to a container through a port published on 127.0.0.1',
    1.5,
    async (ctx) => {
      pullBoth(ctx);
      const publish = (port: number): string[] => ['-p', `127.0.0.1:${port}:5201`];
      ctx.run(hutch('run', '-d', ...MOUNT_IPERF, ...publish(PORTS.hutch), image(), ...server()));
      ctx.run(podman('run', '-d', ...MOUNT_IPERF, ...publish(PORTS.podman), image(), ...server()));
      await reachable(ctx, client('host', '127.0.0.1', PORTS.hutch, 1));
      await reachable(ctx, client('host', '127.0.0.1', PORTS.podman, 1));
    },
    h,
    p,
  );
}

function containerToHost(): Scenario {
  let hostServer: ChildProcess | undefined;
  const h = client('hutch', 'host.containers.internal', PORTS.host);
  const p = client('podman', '10.0.2.2', PORTS.host);
  return scenario(
    'net-container-to-host',
    "iperf3 from a container to a server on the host's loopback",
    1.5,
    async (ctx) => {
      pullBoth(ctx);
      hostServer = spawn(IPERF, ['-s', '-B', '127.0.0.1', '-p', String(PORTS.host)], { stdio: 'ignore' });
      const idle = [image(), 'sleep', '100000'];
      ctx.run(
        hutch(
          'run',
          '-d',
          '--name',
          'iperf-client',
          '--add-host',
          'host.containers.internal:host-gateway',
          ...MOUNT_IPERF,
          ...idle,
        ),
      );
      ctx.run(
        podman(
          'run',
          '-d',
          '--name',
          'iperf-client',
          '--network',
          'slirp4netns:allow_host_loopback=true',
          ...MOUNT_IPERF,
          ...idle,
        ),
      );
      await reachable(ctx, client('hutch', 'host.containers.internal', PORTS.host, 1));
      await reachable(ctx, client('podman', '10.0.2.2', PORTS.host, 1));
    },
    h,
    p,
    (ctx) => {
      if (hostServer?.pid !== undefined && hostServer.exitCode === null) hostServer.kill('SIGTERM');
      removeAll(ctx);
    },
  );
}

function containerToContainer(): Scenario {
  const h = client('hutch', 'iperf-server');
  const p = client('podman', 'iperf-server');
  return scenario(
    'net-container-to-container',
    'iperf3 between two containers on one user network',
    1,
    async (ctx) => {
      pullBoth(ctx);
      for (const engine of [hutch, podman]) {
        ctx.run(engine('network', 'create', 'benchnet'));
        const net = ['--network', 'benchnet', ...MOUNT_IPERF];
        ctx.run(engine('run', '-d', '--name', 'iperf-server', ...net, image(), ...server()));
        ctx.run(engine('run', '-d', '--name', 'iperf-client', ...net, image(), 'sleep', '100000'));
      }
      await reachable(ctx, client('hutch', 'iperf-server', 5201, 1));
      await reachable(ctx, client('podman', 'iperf-server', 5201, 1));
    },
    h,
    p,
    (ctx) => {
      removeAll(ctx);
      for (const engine of [hutch, podman]) {
        try {
          ctx.run(engine('network', 'rm', 'benchnet'));
        } catch {
          // Never made, or the store goes with the scenario anyway.
        }
      }
    },
  );
}

export const network: Scenario[] = [hostToContainer(), containerToHost(), containerToContainer()];
