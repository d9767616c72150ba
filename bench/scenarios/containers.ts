/**
 * Containers, hutch against podman on the same image (busybox from the
 * loopback registry the harness starts, pulled into each engine's own store)
 * and the same storage driver (overlay, asked for explicitly of both):
 *
 * - run-rm-true: `run --rm --network none busybox true`, the whole life of a
 *   container. Target: hutch at most 0.5x podman. Floor: `node -e 0` on the
 *   Node hutch runs on, then a bare `crun run` of /bin/true from a prepared
 *   bundle (see floorBundle()): the least an engine written for Node pays.
 * - ps-a-200: `ps -a` over 200 created (never started) containers. Target:
 *   hutch at most 0.25x podman.
 * - idle-memory: the host memory each idle container costs beyond its own
 *   processes (conmon, and whatever else the engine leaves running per
 *   container), as proportional set size. Target: hutch at most podman.
 *
 * A command of either engine that fails (in setup too) fails its scenario,
 * with the command's stderr; the other scenarios still run.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hutchNodeOf } from '../engines.ts';
import { benchRegistry } from '../oci-registry.ts';
import type { Scenario, ScenarioContext } from '../types.ts';

export const image = (): string => `${benchRegistry()}/busybox:latest`;

/** hutch and podman with their stores (the harness adds them) and overlay storage. */
export const hutch = (...args: string[]): string[] => ['hutch', '--storage-driver', 'overlay', ...args];
export const podman = (...args: string[]): string[] => ['podman', '--storage-driver', 'overlay', ...args];

/** The busybox image in both stores, and both stores on overlay; throws (failing the scenario) otherwise. */
export function pullBoth(ctx: ScenarioContext): void {
  ctx.run(hutch('pull', '-q', image()));
  ctx.run(podman('pull', '-q', '--tls-verify=false', `docker://${image()}`));
  const drivers = {
    hutch: ctx.run(hutch('info', '--format', '{{.Store.GraphDriverName}}')).stdout.trim(),
    podman: ctx.run(podman('info', '--format', '{{.Store.GraphDriverName}}')).stdout.trim(),
  };
  if (drivers.hutch !== 'overlay' || drivers.podman !== 'overlay') {
    throw new Error(`both stores must be on overlay; they are: ${JSON.stringify(drivers)}`);
  }
}

export function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Removes every container of both engines' stores; all are tried, the failures reported together. */
export function removeAll(ctx: ScenarioContext): void {
  const errors: string[] = [];
  try {
    const ids = lines(ctx.run(hutch('ps', '-aq')).stdout);
    if (ids.length > 0) ctx.run(hutch('rm', '-f', ...ids));
  } catch (e) {
    errors.push(e instanceof Error ? e.message : String(e));
  }
  try {
    // -t 0: kill at once, as hutch rm -f does, instead of podman's 10 s grace for a PID 1 that ignores SIGTERM.
    ctx.run(podman('rm', '-a', '-f', '-t', '0'));
  } catch (e) {
    errors.push(e instanceof Error ? e.message : String(e));
  }
  if (errors.length > 0) throw new Error(`removing the containers failed:\n${errors.join('\n')}`);
}

/**
 * The floor's bundle: the busybox image's layer, fetched from the registry
 * and unpacked as a plain directory, with crun's own rootless spec (its own
 * user namespace mapping only the user to root, and new pid, network, ipc,
 * uts and mount namespaces, like `--network none`) running `true`.
 */
async function floorBundle(ctx: ScenarioContext): Promise<string> {
  const bundle = join(ctx.dir, 'floor');
  const rootfs = join(bundle, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  const base = `http://${benchRegistry()}/v2/busybox`;
  const res = await fetch(`${base}/manifests/latest`, {
    headers: {
      accept:
        'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
    },
  });
  if (!res.ok) throw new Error(`floor: GET ${base}/manifests/latest: ${res.status}`);
  const manifest = (await res.json()) as { layers?: { digest: string }[] };
  for (const layer of manifest.layers ?? []) {
    const blob = await fetch(`${base}/blobs/${layer.digest}`);
    if (!blob.ok) throw new Error(`floor: GET ${base}/blobs/${layer.digest}: ${blob.status}`);
    const file = join(bundle, 'layer.tar.gz');
    writeFileSync(file, Buffer.from(await blob.arrayBuffer()));
    ctx.run(['tar', '-xzf', file, '-C', rootfs]);
    rmSync(file);
  }
  ctx.run({ argv: ['crun', 'spec', '--rootless'], cwd: bundle });
  const specFile = join(bundle, 'config.json');
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as {
    process: { args: string[]; terminal: boolean };
  };
  spec.process.args = ['/bin/true'];
  spec.process.terminal = false;
  writeFileSync(specFile, JSON.stringify(spec));
  return bundle;
}

/** Containers left in either store: `run --rm` must leave none. */
function leftovers(ctx: ScenarioContext): string {
  const h = lines(ctx.run(hutch('ps', '-aq')).stdout).length;
  const p = lines(ctx.run(podman('ps', '-aq')).stdout).length;
  return h + p === 0 ? '' : `run --rm left containers behind: hutch ${h}, podman ${p}`;
}

function runRmTrue(): Scenario {
  let bundle = '';
  return {
    name: 'run-rm-true',
    description: 'run --rm --network none busybox true; floor: node -e 0, then a bare crun run of /bin/true',
    rounds: 15,
    warmup: 2,
    registry: true,
    setup: async (ctx) => {
      pullBoth(ctx);
      bundle = await floorBundle(ctx);
    },
    teardown: (ctx) => {
      const left = leftovers(ctx);
      removeAll(ctx);
      if (left) throw new Error(left);
    },
    hutch: () => hutch('run', '--rm', '--network', 'none', image(), 'true'),
    peer: () => podman('run', '--rm', '--network', 'none', image(), 'true'),
    // The floor: start the Node hutch runs on (`node -e 0`: the version
    // scenario's floor), then have the OCI runtime create, run and delete a
    // container of /bin/true, in a user namespace of its own, from an
    // unpacked bundle. Any engine on Node pays at least these two. Left out,
    // as an engine's own work: entering the engine's namespace with its
    // sub-ids, the image's config, the container's record, the overlay
    // mount, conmon. The sh in between costs about a millisecond.
    floor: (ctx) => [
      'sh',
      '-c',
      '"$0" -e 0 && exec crun --root "$1" run --bundle "$2" "hb-floor-$$"',
      hutchNodeOf(ctx.repo),
      join(dirname(ctx.hutchRunroot), 'crun'),
      bundle,
    ],
    target: { metric: 'time', ratioMax: 0.5 },
  };
}

const PS_CONTAINERS = 200;

function psA200(): Scenario {
  return {
    name: 'ps-a-200',
    description: `ps -a over ${PS_CONTAINERS} created, never started, busybox containers`,
    rounds: 15,
    warmup: 2,
    registry: true,
    setup: (ctx) => {
      pullBoth(ctx);
      const spent = { hutch: 0, podman: 0 };
      for (let i = 0; i < PS_CONTAINERS; i++) {
        let t = performance.now();
        ctx.run(hutch('create', image(), 'true'));
        spent.hutch += performance.now() - t;
        t = performance.now();
        ctx.run(podman('create', image(), 'true'));
        spent.podman += performance.now() - t;
      }
      const counts = {
        hutch: lines(ctx.run(hutch('ps', '-aq')).stdout).length,
        podman: lines(ctx.run(podman('ps', '-aq')).stdout).length,
      };
      if (counts.hutch !== PS_CONTAINERS || counts.podman !== PS_CONTAINERS) {
        throw new Error(
          `expected ${PS_CONTAINERS} containers in each store, found ${JSON.stringify(counts)}`,
        );
      }
      const each = (ms: number): string => `${(ms / PS_CONTAINERS).toFixed(0)} ms`;
      console.log(
        `ps-a-200: created ${PS_CONTAINERS} containers in each store; create took ` +
          `hutch ${each(spent.hutch)}, podman ${each(spent.podman)} on average (untimed, for information)`,
      );
    },
    teardown: removeAll,
    hutch: hutch('ps', '-a'),
    peer: podman('ps', '-a'),
    target: { metric: 'time', ratioMax: 0.25 },
  };
}

const IDLE_CONTAINERS = 5;

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  args: string[];
}

/** This user's processes, from /proc. */
function userProcesses(): Proc[] {
  const uid = process.getuid?.();
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      if (Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) !== uid) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(name), ppid, comm, args });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** PIDS and all their descendants. */
function withDescendants(pids: number[], procs: Proc[]): Set<number> {
  const tree = new Set(pids);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) {
      if (tree.has(p.ppid) && !tree.has(p.pid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
  }
  return tree;
}

/** Whether PID is a live process (a zombie is not: it has ended, its parent has yet to reap it). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

function pidIn(file: string): number | undefined {
  try {
    return Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
}

/** kB figures of /proc/PID/smaps_rollup. */
function rollup(pid: number): { rss: number; pss: number; priv: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rss: kb('Rss'), pss: kb('Pss'), priv: kb('Private_Clean') + kb('Private_Dirty') };
}

/**
 * The host processes an engine keeps per container, beyond the containers'
 * own: every process of the user whose command line names this engine's
 * store (root or runroot) or one of its containers' IDs, and each
 * container's conmon (from inspect), less the containers' own process trees
 * (from their State.Pid) and the engine's pause process (one per user, not
 * per container).
 */
function engineProcesses(
  ctx: ScenarioContext,
  engine: 'hutch' | 'podman',
  names: string[],
): { pids: number[]; describe: string } {
  const cmd = engine === 'hutch' ? hutch : podman;
  const ids: string[] = [];
  const conmons: number[] = [];
  const inits: number[] = [];
  for (const name of names) {
    const out = ctx.run(cmd('inspect', '--format', '{{.Id}} {{.State.Pid}} {{.State.ConmonPid}}', name));
    const [id, pid, conmon] = out.stdout.trim().split(/\s+/);
    if (!id || !(Number(pid) > 0) || !(Number(conmon) > 0)) {
      throw new Error(`${engine} inspect ${name}: no running container with a conmon: ${out.stdout.trim()}`);
    }
    ids.push(id);
    inits.push(Number(pid));
    conmons.push(Number(conmon));
  }
  const procs = userProcesses();
  const own = withDescendants(inits, procs);
  const pause =
    engine === 'hutch'
      ? pidIn(join(ctx.hutchRunroot, 'pause.pid'))
      : pidIn(join(ctx.podmanTmpdir, 'pause.pid'));
  const dirs = engine === 'hutch' ? [ctx.hutchRoot, ctx.hutchRunroot] : [ctx.podmanRoot, ctx.podmanRunroot];
  const names_ = (a: string): boolean =>
    dirs.some((d) => a === d || a.includes(`${d}/`) || a.endsWith(`=${d}`)) ||
    ids.some((id) => a.includes(id));
  const found = new Set(conmons);
  for (const p of procs) {
    if (p.pid === process.pid || p.pid === pause || own.has(p.pid)) continue;
    if (p.args.some(names_)) found.add(p.pid);
  }
  for (const pid of conmons) {
    if (own.has(pid)) throw new Error(`${engine}: conmon ${pid} is inside a container's own process tree`);
  }
  const comms = new Map<string, number>();
  for (const p of procs) if (found.has(p.pid)) comms.set(p.comm, (comms.get(p.comm) ?? 0) + 1);
  const missing = [...found].filter((pid) => !running(pid));
  if (missing.length > 0) throw new Error(`${engine}: conmon ${missing.join(', ')} is not running`);
  return {
    pids: [...found].sort((a, b) => a - b),
    describe: [...comms].map(([c, n]) => `${c} x${n}`).join(', '),
  };
}

function idleMemory(): Scenario {
  const names = Array.from({ length: IDLE_CONTAINERS }, (_, i) => `hb-idle-${i}`);
  const found: { hutch: number[]; podman: number[] } = { hutch: [], podman: [] };
  const read = (pids: number[]) => ({
    argv: ['cat', ...pids.map((pid) => `/proc/${pid}/smaps_rollup`)],
    capture: true,
  });
  return {
    name: 'idle-memory',
    description: `host memory (Pss, MB) per idle container beyond its own processes (conmon...), ${IDLE_CONTAINERS} sleeping busybox containers`,
    rounds: 5,
    warmup: 1,
    registry: true,
    setup: async (ctx) => {
      pullBoth(ctx);
      for (const name of names) {
        const args = ['run', '-d', '--name', name, '--network', 'none', image(), 'sleep', '1000'];
        ctx.run(hutch(...args));
        ctx.run(podman(...args));
      }
      // Let the conmons settle after the start-up handshake.
      await sleep(1000);
      for (const engine of ['hutch', 'podman'] as const) {
        const { pids, describe } = engineProcesses(ctx, engine, names);
        found[engine] = pids;
        const sum = pids.map(rollup).reduce((a, r) => ({
          rss: a.rss + r.rss,
          pss: a.pss + r.pss,
          priv: a.priv + r.priv,
        }));
        const mb = (kb: number): string => `${(kb / 1024 / IDLE_CONTAINERS).toFixed(2)} MB`;
        console.log(
          `idle-memory: ${engine}: ${IDLE_CONTAINERS} containers; host processes: ${describe}; ` +
            `per container: Rss ${mb(sum.rss)}, Pss ${mb(sum.pss)}, private ${mb(sum.priv)}`,
        );
      }
    },
    teardown: async (ctx) => {
      removeAll(ctx);
      // rm -f ends each container; its conmon then runs the exit command and
      // ends too, shortly after. One still running then would outlive its store.
      const left = (): string[] =>
        (['hutch', 'podman'] as const).flatMap((e) => found[e].filter(running).map((pid) => `${e} ${pid}`));
      const t0 = performance.now();
      const lingering = left();
      while (performance.now() - t0 < 5000 && left().length > 0) await sleep(20);
      if (lingering.length > 0) {
        const ms = (performance.now() - t0).toFixed(0);
        console.log(`idle-memory: conmon ${lingering.join(', ')} still ran after rm -f; waited ${ms} ms`);
      }
      if (left().length > 0) throw new Error(`still running 5 s after rm -f: ${left().join(', ')}`);
    },
    hutch: () => read(found.hutch),
    peer: () => read(found.podman),
    measure: (sample) => {
      const pss = [...sample.stdout.matchAll(/^Pss:\s+(\d+) kB/gm)].reduce((s, m) => s + Number(m[1]), 0);
      return pss / 1024 / IDLE_CONTAINERS;
    },
    target: { metric: 'rss', ratioMax: 1 },
  };
}

export const containers: Scenario[] = [runRmTrue(), psA200(), idleMemory()];
