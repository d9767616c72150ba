/**
 * `system check` for containers. hutch has no daemon, so what a container
 * holds outside its record (a mounted root, the runtime's state, a conmon, an
 * exit file, its name) is tied to the record only by its ID, and a command
 * killed half way can leave either side without the other. This checker
 * lines them up:
 *
 *   record (ROOT/containers/ID)       <- name links (ROOT/containers/names)
 *     root: ROOT/storage/DRIVER/containers/ID (+ its mount, in our namespace)
 *     runtime state: RUNROOT/oci/RUNTIME/ID
 *     monitor: a conmon whose `-c ID` and `--root=RUNROOT/oci/...` name it
 *     exit file RUNROOT/exits/ID, attach link RUNROOT/s/SHORTID
 *
 * It runs inside the user's namespace (systemCheck enters it first): the
 * container mounts live there, so /proc/self/mountinfo shows them.
 *
 * Leftover `.tmp-*` bundles in ROOT/containers (a killed create or rm) are
 * reported and removed by check.ts's temporary-file walk, which sees every
 * `.tmp-*` under ROOT; reporting them here too would list each twice.
 */
import {
  existsSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { parseMountInfo } from '../../host/cgroups.ts';
import { monitorAlive, processStart, readExitFile } from '../../runtime/containers/liveness.ts';
import { BUNDLE_ROOT } from '../../runtime/containers/mapped-root.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { OciRuntime } from '../../runtime/oci/runtime.ts';
import { lockFile } from '../../sys/lock.ts';
import { unmountEvery } from '../../sys/native.ts';
import { errnoCode } from '../../util/errors.ts';
import { TEMP_MARK } from '../../util/fs-atomic.ts';
import { log } from '../../util/log.ts';
import type { Finding } from '../check.ts';
import type { Context } from '../context.ts';
import { releaseExited } from './cleanup.ts';
import { checkFuseDaemons } from './fuse-check.ts';
import { openContainers } from './open.ts';
import { detachBridges } from '../../network/bridge.ts';
import { networkLeftovers, removeLeftovers } from '../../network/leftovers.ts';
import { idleInfra, nameServerDown, removeIdleInfra, restartNameServer } from '../../network/dns.ts';
import { NetworkStore } from '../../network/store.ts';
import { resumeHandoff } from '../../network/handoff.ts';
import type { NetworkLeftovers } from '../../network/leftovers.ts';
import type { Containers } from './open.ts';

const ID = /^[0-9a-f]{64}$/;

/** How long a killed orphan's conmon may take to notice and exit. */
const CONMON_EXIT_MS = 10_000;

function dirNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function label(rec: ContainerRecord): string {
  return `container ${rec.name} (${rec.id.slice(0, 12)})`;
}

function short(id: string): string {
  return id.slice(0, 12);
}

function claimsRunning(rec: ContainerRecord): boolean {
  return rec.state.status === 'running' || rec.state.status === 'paused';
}

/** Running as far as hutch can tell: the record says so, its conmon lives and no exit is recorded. */
function reallyRunning(c: Containers, rec: ContainerRecord): boolean {
  return claimsRunning(rec) && monitorAlive(rec.state) && !existsSync(c.store.exitFile(rec.id));
}

/**
 * Mount points under ROOT/storage/DRIVER/containers/ID/, and the binds of
 * roots in bundles, ROOT/containers/ID/rootfs (runtime/containers/mapped-root.ts),
 * by container ID.
 */
function containerMounts(root: string): Map<string, string[]> {
  let real = root;
  try {
    real = realpathSync(root);
  } catch {
    // A root that does not resolve has no mounts either; the prefix below then matches nothing.
  }
  const storage = `${join(real, 'storage')}/`;
  const out = new Map<string, string[]>();
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return out;
  }
  const bundles = `${join(real, 'containers')}/`;
  for (const m of parseMountInfo(text)) {
    let id: string | undefined;
    if (m.mountPoint.startsWith(storage)) {
      const [, kind, cid, ...rest] = m.mountPoint.slice(storage.length).split('/');
      if (kind === 'containers' && rest.length > 0) id = cid;
    } else if (m.mountPoint.startsWith(bundles)) {
      // Also in a bundle that a killed `rm` had renamed away (.tmp-rm-ID).
      const [cid, sub] = m.mountPoint.slice(bundles.length).split('/');
      if (sub === BUNDLE_ROOT) id = cid?.replace(/^\.tmp-rm-/, '');
    }
    if (!id || !ID.test(id)) continue;
    const list = out.get(id) ?? [];
    if (!list.includes(m.mountPoint)) list.push(m.mountPoint);
    out.set(id, list);
  }
  return out;
}

/** Takes every mount off each point, deepest first. */
function unmountAll(points: string[]): void {
  for (const p of [...points].sort((a, b) => b.length - a.length)) unmountEvery(p);
}

/** The driver directories holding a container's root: ROOT/storage/DRIVER/containers/ID. */
function driverDirs(root: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const storage = join(root, 'storage');
  for (const driver of dirNames(storage)) {
    const dir = join(storage, driver, 'containers');
    for (const id of dirNames(dir)) {
      if (!ID.test(id)) continue;
      out.set(id, [...(out.get(id) ?? []), join(dir, id)]);
    }
  }
  return out;
}

/** The runtime's state directories: RUNROOT/oci/RUNTIME/ID, by container ID. */
function runtimeDirs(runtimeRoot: string): Map<string, { runtime: string; dir: string }[]> {
  const out = new Map<string, { runtime: string; dir: string }[]>();
  for (const runtime of dirNames(runtimeRoot)) {
    for (const id of dirNames(join(runtimeRoot, runtime))) {
      if (!ID.test(id)) continue;
      out.set(id, [...(out.get(id) ?? []), { runtime, dir: join(runtimeRoot, runtime, id) }]);
    }
  }
  return out;
}

/** Forgets a container in its runtime (killing what is left of it), then removes the state directory. */
function deleteRuntimeState(c: Containers, runtime: string, dir: string, id: string): void {
  try {
    c.runtime(runtime).delete(id);
  } catch (e) {
    // A runtime no longer installed cannot be asked; its directory still goes.
    log.debug(`${runtime} delete ${id}: ${(e as Error).message}`);
  }
  rmSync(dir, { recursive: true, force: true });
}

function describeLeftovers(left: NetworkLeftovers): string {
  return [
    ...(left.files.length ? [left.files.join(', ')] : []),
    ...left.helpers.map((pid) => `network helper pid ${pid}`),
  ].join(' and ');
}

export interface ConmonProcess {
  pid: number;
  /** The container it monitors (`-c`). */
  id: string;
  /** The runtime binary (`-r`) and its state root (`--runtime-arg --root=...`). */
  runtimePath: string;
  runtimeRoot: string;
}

/** Reads a conmon command line (NUL-separated); undefined when it is not one hutch could have started. */
export function parseConmonArgs(argv: string[]): Omit<ConmonProcess, 'pid'> | undefined {
  let id: string | undefined;
  let runtimePath: string | undefined;
  let runtimeRoot: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if ((a === '-c' || a === '--cid') && next !== undefined) id = next;
    else if ((a === '-r' || a === '--runtime') && next !== undefined) runtimePath = next;
    else if (a === '--runtime-arg' && next?.startsWith('--root=')) runtimeRoot = next.slice('--root='.length);
    else continue;
    i++;
  }
  if (!id || !runtimePath || !runtimeRoot) return undefined;
  return { id, runtimePath, runtimeRoot };
}

/**
 * The conmons of this store: their runtime root lies under RUNROOT/oci, which
 * no other store or user shares (RUNROOT is the user's own, 0700), so that
 * alone tells ours from podman's or another store's.
 */
export function storeConmons(runtimeRoot: string): ConmonProcess[] {
  const out: ConmonProcess[] = [];
  const prefix = `${runtimeRoot}/`;
  for (const name of dirNames('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'conmon') continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const parsed = parseConmonArgs(argv);
      if (parsed && parsed.runtimeRoot.startsWith(prefix) && processStart(pid) !== undefined)
        out.push({ pid, ...parsed });
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return out;
}

function signalProcess(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

/** The runtime a conmon drives, as it was given to it. */
function runtimeOf(p: ConmonProcess): OciRuntime {
  return new OciRuntime(
    { name: basename(p.runtimeRoot), path: p.runtimePath, fallback: undefined },
    join(p.runtimeRoot, '..'),
  );
}

/**
 * Whether the container a conmon watches still has processes. Once it has
 * ended, conmon only writes the exit file and runs the exit command, which
 * may remove the record (--rm) while conmon is still there: that conmon is
 * on its way out, not hiding anything.
 */
function orphanLives(p: ConmonProcess): boolean {
  const s = runtimeOf(p).state(p.id);
  return s !== undefined && s.status !== 'stopped';
}

/** Kills the container a conmon watches through its runtime; conmon then exits by itself. */
async function killOrphan(p: ConmonProcess): Promise<void> {
  const runtime = runtimeOf(p);
  const start = processStart(p.pid);
  if (start === undefined) return;
  // Its init, not --all: without a delegated cgroup the runtime finds no processes for
  // --all and kills nothing. Init is PID 1 of the container's namespace, so the rest die with it.
  let killed = false;
  try {
    killed = runtime.kill(p.id, 'SIGKILL');
  } catch (e) {
    log.debug(`kill ${p.id}: ${(e as Error).message}`);
  }
  // The runtime no longer knows the container: only conmon is left, and it is ours to end.
  if (!killed) signalProcess(p.pid);
  const deadline = Date.now() + CONMON_EXIT_MS;
  while (processStart(p.pid) === start && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (processStart(p.pid) === start) signalProcess(p.pid);
  // Whatever is left of the container goes with its state (delete --force kills it).
  runtime.delete(p.id);
}

/**
 * Runs fn under the container's lock, so that a command working on the
 * container right now finishes first and is never judged half way. Skips a
 * container whose bundle is gone by then.
 */
function underLock(c: Containers, id: string, fn: () => void): void {
  let lock;
  try {
    lock = lockFile(c.store.lockPath(id));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return;
    throw e;
  }
  if (!lock) return;
  try {
    fn();
  } finally {
    lock.release();
  }
}

type Loaded = { rec: ContainerRecord } | { broken: string };

function load(c: Containers, id: string): Loaded | undefined {
  try {
    const rec = c.store.read(id);
    if (rec) return { rec };
    return existsSync(c.store.bundle(id)) ? { broken: 'has no container.json' } : undefined;
  } catch (e) {
    return { broken: (e as Error).message };
  }
}

/**
 * Brings every record up to date the way any hutch command touching the
 * container would, before anything is judged. This is normal operation, not
 * repair, so it runs without --repair too: a container whose process ended
 * while no hutch command watched (conmon's exit command killed, or the host
 * rebooted) is simply exited, and a start, stop or rm that was killed before
 * it finished leaves a mount or runtime state that the next command on that
 * container undoes first thing (start deletes the runtime's state, rm and
 * stop release the root). releaseExited is that step; it decides under the
 * container's lock from the fresh record, so a container that is running,
 * or being started by a concurrent command, is left alone.
 */
function reconcile(c: Containers, ids: string[], mounts: Map<string, string[]>): void {
  const inRuntime = runtimeDirs(c.store.runtimeRoot);
  const netLeft = networkLeftovers(c.ctx.paths.runroot);
  for (const id of ids) {
    const got = load(c, id);
    if (!got || !('rec' in got)) continue;
    const rec = got.rec;
    const stale = claimsRunning(rec)
      ? !reallyRunning(c, rec)
      : mounts.has(id) ||
        inRuntime.has(id) ||
        netLeft.has(id) ||
        rec.state.rootfs !== undefined ||
        rec.state.network !== undefined;
    if (!stale) continue;
    log.info(`container ${rec.name}: releasing what its ended process or an interrupted command left`);
    try {
      releaseExited(c, id);
    } catch (e) {
      // What it could not release is reported below.
      log.debug(`releasing ${id}: ${(e as Error).message}`);
    }
  }
}

export async function checkContainers(ctx: Context, repair: boolean): Promise<Finding[]> {
  const c = openContainers(ctx);
  const findings: Finding[] = [];
  const found = (severity: Finding['severity'], what: string, detail: string, repaired: boolean): void => {
    findings.push({ severity, what, detail, repaired });
  };
  /** Runs a repair when asked for; says whether it was done. */
  const fix = (what: string, fn: () => void): boolean => {
    if (!repair) return false;
    try {
      fn();
      return true;
    } catch (e) {
      log.warn(`could not repair ${what}: ${(e as Error).message}`);
      return false;
    }
  };

  reconcile(c, c.store.ids(), containerMounts(ctx.paths.root));

  // What is there now, after reconciliation.
  const records = new Map<string, ContainerRecord>();
  const broken = new Map<string, string>();
  for (const id of c.store.ids()) {
    const got = load(c, id);
    if (!got) continue;
    if ('rec' in got) records.set(id, got.rec);
    else broken.set(id, got.broken);
  }

  // Each record, judged under its lock against its mount and runtime state.
  for (const id of [...records.keys()]) {
    // A container that ended since reconcile() looked is released as reconcile would: normal operation, not a finding.
    const seen = records.get(id);
    if (seen && claimsRunning(seen) && existsSync(c.store.exitFile(id))) {
      try {
        releaseExited(c, id);
      } catch (e) {
        log.debug(`releasing ${id}: ${(e as Error).message}`);
      }
    }
    let staleClaim: Finding | undefined;
    underLock(c, id, () => {
      const rec = c.store.read(id);
      if (!rec) {
        records.delete(id);
        return;
      }
      records.set(id, rec);
      const running = reallyRunning(c, rec);
      if (claimsRunning(rec) && !running) {
        const why = existsSync(c.store.exitFile(id))
          ? 'its exit is recorded'
          : `its monitor (conmon, pid ${rec.state.conmonPid}) is gone`;
        found('problem', label(rec), `the record says ${rec.state.status}, but ${why}`, repair);
        staleClaim = findings[findings.length - 1];
      }
      if (running) return;
      const points = containerMounts(ctx.paths.root).get(id);
      // A zfs root is mounted for the container's whole life (storage/drivers/zfs.ts).
      if (points && rec.driver !== 'zfs') {
        const ok = fix(label(rec), () => unmountAll(points));
        found('problem', label(rec), `its root is mounted (${points.join(', ')}) but it is not running`, ok);
      }
      for (const r of runtimeDirs(c.store.runtimeRoot).get(id) ?? []) {
        const ok = fix(r.dir, () => deleteRuntimeState(c, r.runtime, r.dir, id));
        found(
          'garbage',
          `runtime state of ${label(rec)}`,
          `${r.dir}: ${r.runtime} still has it, but the container is not running`,
          ok,
        );
      }
      const left = networkLeftovers(ctx.paths.runroot).get(id);
      if (left) {
        found(
          'garbage',
          `network of ${label(rec)}`,
          `${describeLeftovers(left)}, but the container is not running`,
          fix(label(rec), () => removeLeftovers(ctx.paths, id, left)),
        );
      }
    });
    // releaseExited takes the container's lock itself, so it runs once ours is released.
    if (staleClaim && repair) {
      staleClaim.repaired = fix(`container ${short(id)}`, () => {
        try {
          releaseExited(c, id);
        } catch (e) {
          log.warn(`releasing container ${short(id)}: ${(e as Error).message}`);
        }
        const now = c.store.read(id);
        if (!now || !claimsRunning(now) || reallyRunning(c, now)) return;
        // releaseExited could not finish: at least the record stops claiming a process.
        const exit = readExitFile(c.store.exitFile(id));
        c.store.update(id, (r) => {
          r.state = {
            ...r.state,
            status: 'exited',
            pid: 0,
            exitCode: exit?.code ?? 255,
            finishedAt: exit?.at ?? new Date().toISOString(),
            rootfs: undefined,
          };
        });
      });
    }
  }

  // Damaged records: nothing can be done with such a container but remove it (as the read error's hint says).
  for (const [id, why] of broken) {
    const ok = fix(`container ${short(id)}`, () => {
      const gone = join(c.store.dir, `${TEMP_MARK}rm-${id}`);
      c.store.changing(() => renameSync(c.store.bundle(id), gone));
      rmSync(gone, { recursive: true, force: true });
    });
    found('problem', `container ${short(id)}`, `${c.store.bundle(id)} ${why}; --repair removes it`, ok);
  }

  // Names: every link names a container of that name, every container has its link.
  // Under the store lock, as create, rename and rm change names only under it.
  const nameLock = lockFile(join(c.store.dir, 'containers.lock'));
  try {
    const reserved = new Set<string>();
    for (const name of dirNames(c.store.namesDir)) {
      const link = join(c.store.namesDir, name);
      let target = '';
      try {
        target = readlinkSync(link);
      } catch {
        // Not a link: it names nothing.
      }
      // A damaged container's link goes when the container does.
      if (broken.has(target) && existsSync(c.store.bundle(target))) continue;
      const loaded = ID.test(target) && !records.has(target) ? load(c, target) : undefined;
      const holder = records.get(target) ?? (loaded && 'rec' in loaded ? loaded.rec : undefined);
      if (holder && holder.name === name) {
        reserved.add(holder.id);
        continue;
      }
      const why = holder
        ? `points at ${label(holder)}, which is named ${holder.name} (a rename was interrupted)`
        : `points at ${target ? `container ${short(target)}, which does not exist` : 'nothing'}`;
      found(
        'garbage',
        `container name "${name}"`,
        why,
        fix(link, () => rmSync(link, { force: true })),
      );
    }
    for (const rec of records.values()) {
      if (reserved.has(rec.id)) continue;
      // Removed since it was read (a --rm container's cleanup): its name went with it, rightly.
      if (!existsSync(c.store.recordPath(rec.id))) continue;
      const link = join(c.store.namesDir, rec.name);
      let other: string | undefined;
      try {
        other = readlinkSync(link);
      } catch {
        // No link: the name is free for anyone to take.
      }
      const holder = other && other !== rec.id ? records.get(other) : undefined;
      if (holder && holder.name === rec.name) {
        found(
          'problem',
          label(rec),
          `${label(holder)} has the same name; rename one of them (hutch rename)`,
          false,
        );
        continue;
      }
      const ok = fix(label(rec), () => {
        rmSync(link, { force: true });
        symlinkSync(rec.id, link);
      });
      found(
        'problem',
        label(rec),
        `its name "${rec.name}" is not reserved: another container could take it`,
        ok,
      );
    }
  } finally {
    nameLock?.release();
  }

  // Addresses on user networks held for containers that do not run (a start or an exit killed half-way).
  const netStore = new NetworkStore(ctx.paths.root);
  for (const net of netStore.list()) {
    for (const [id, lease] of Object.entries(netStore.readLeases(net.name))) {
      const rec = records.get(id) ?? c.store.read(id);
      if (rec && reallyRunning(c, rec)) continue;
      found(
        'garbage',
        `address ${lease.ip} on network ${net.name}`,
        `leased to ${rec ? label(rec) : `container ${short(id)}, which does not exist`}${rec ? ', which is not running' : ''}`,
        fix(`the address of ${short(id)}`, () => detachBridges(ctx.paths.root, ctx.paths.runroot, id)),
      );
    }
  }

  if (idleInfra(ctx.paths.root, ctx.paths.runroot)) {
    found(
      'garbage',
      "user networks' namespace",
      'it (with its pasta and name server) is there, but no container holds an address on a user network',
      fix('the namespace of user networks', () => removeIdleInfra(ctx.paths.root, ctx.paths.runroot)),
    );
  }
  // The name server of user networks, while any container is on one.
  const dns = nameServerDown(ctx.paths.root, ctx.paths.runroot);
  if (dns) {
    found(
      'problem',
      'name server of user networks',
      `${dns}: containers there cannot resolve each other's names; --repair starts it again`,
      fix('hutch-dns', () => restartNameServer(ctx.paths.root, ctx.paths.runroot)),
    );
  }

  // Published ports' hutch-handoff of running containers: killed, the container's next bind waits for it.
  for (const rec of records.values()) {
    const net = rec.state.network;
    if (!net?.handoffPid || !reallyRunning(c, rec) || processStart(net.handoffPid) === net.handoffStart)
      continue;
    let ok = false;
    if (repair) {
      try {
        const pid = await resumeHandoff(net);
        c.store.update(rec.id, (r) => {
          if (r.state.network) {
            r.state.network.handoffPid = pid;
            r.state.network.handoffStart = processStart(pid) ?? 0;
          }
        });
        ok = true;
      } catch (e) {
        log.warn(`resuming hutch-handoff of ${label(rec)}: ${(e as Error).message}`);
      }
    }
    found(
      'problem',
      label(rec),
      'its hutch-handoff is gone: a bind of a published port in it waits; --repair resumes it',
      ok,
    );
  }

  // Orphans: what is named by a container ID without a readable record. Each is
  // looked up once more right before it is judged: a create may have just finished.
  const known = (id: string): boolean => records.has(id) || (!broken.has(id) && load(c, id) !== undefined);

  // Monitors first: with --repair their containers must be dead before their roots are unmounted.
  for (const p of storeConmons(c.store.runtimeRoot)) {
    if (known(p.id) || !orphanLives(p)) continue;
    let ok = false;
    if (repair) {
      try {
        await killOrphan(p);
        ok = true;
      } catch (e) {
        log.warn(`could not stop container ${short(p.id)}: ${(e as Error).message}`);
      }
    }
    found(
      'problem',
      `conmon ${p.pid}`,
      `it monitors container ${short(p.id)}, which has no record: its processes run unseen; --repair kills them`,
      ok,
    );
  }

  const mounts = containerMounts(ctx.paths.root);
  const dirs = driverDirs(ctx.paths.root);
  for (const [id, points] of mounts) {
    if (known(id)) continue;
    const ok = fix(`the root of ${short(id)}`, () => {
      unmountAll(points);
      for (const d of dirs.get(id) ?? []) rmSync(d, { recursive: true, force: true });
    });
    found(
      'problem',
      `container root ${short(id)}`,
      `mounted at ${points.join(', ')}, but there is no such container (a leaked mount)`,
      ok,
    );
  }
  for (const [id, list] of dirs) {
    if (mounts.has(id) || known(id)) continue;
    for (const d of list) {
      found(
        'garbage',
        'container root',
        `${d} belongs to no container`,
        fix(d, () => rmSync(d, { recursive: true, force: true })),
      );
    }
  }
  for (const [id, list] of runtimeDirs(c.store.runtimeRoot)) {
    if (known(id)) continue;
    for (const r of list) {
      const ok = fix(r.dir, () => deleteRuntimeState(c, r.runtime, r.dir, id));
      found('garbage', 'runtime state', `${r.dir} belongs to no container`, ok);
    }
  }
  for (const [id, left] of networkLeftovers(ctx.paths.runroot)) {
    if (known(id)) continue;
    found(
      'garbage',
      'container network',
      `${describeLeftovers(left)} of container ${short(id)}, which does not exist`,
      fix(`the network of ${short(id)}`, () => removeLeftovers(ctx.paths, id, left)),
    );
  }
  for (const id of dirNames(c.store.exitsDir)) {
    if (!ID.test(id) || known(id)) continue;
    const f = c.store.exitFile(id);
    found(
      'garbage',
      'exit file',
      `${f} belongs to no container`,
      fix(f, () => rmSync(f, { force: true })),
    );
  }
  // conmon's short link to a bundle, for the attach socket: RUNROOT/s/SHORTID (SHORTID-exec for exec).
  const ids = c.store.ids();
  for (const s of dirNames(c.store.socketsDir)) {
    if (ids.some((id) => id.startsWith(s.slice(0, 12)))) continue;
    const p = join(c.store.socketsDir, s);
    found(
      'garbage',
      'attach socket link',
      `${p} belongs to no container`,
      fix(p, () => rmSync(p, { recursive: true, force: true })),
    );
  }
  if (c.store.staleSummaries()) {
    found(
      'problem',
      'container list',
      'the summaries `ps` reads are older than the records; --repair makes them anew',
      fix('the container summaries', () => c.store.changed()),
    );
  }
  // Last: the unmounts above end their daemons; what serves a mount nobody here sees is leaked.
  findings.push(
    ...checkFuseDaemons(ctx.paths.root, repair, (id) => {
      try {
        const rec = c.store.read(id);
        return rec !== undefined && reallyRunning(c, rec);
      } catch {
        return true; // a damaged record: its daemon is left until the record is dealt with
      }
    }),
  );
  return findings;
}
