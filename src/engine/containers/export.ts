/**
 * `hutch export`: a container's whole root filesystem as a tar, to stdout
 * or a file. Also the two helpers the file commands share: reaching a
 * container's root (mounted while it runs; mounted for the moment, under
 * the container's lock, while it does not) and pausing a container while
 * its files are read or written.
 */
import { createWriteStream, renameSync, realpathSync, rmSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { TreePacker, fromBytes, toBytes } from '../../storage/archive/tar-writer.ts';
import { rootLayerOf } from '../../runtime/containers/types.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { lockFile } from '../../sys/lock.ts';
import { HutchError, errnoCode } from '../../util/errors.ts';
import { tempPathFor } from '../../util/fs-atomic.ts';
import { ownerMapper } from '../../util/idmap.ts';
import { log } from '../../util/log.ts';
import type { Context } from '../context.ts';
import { userPath } from '../save.ts';
import { openContainers } from './open.ts';
import type { Containers } from './open.ts';
import { isRunning } from './stop.ts';

export interface RootAccess {
  /** The container's root directory as mounted here (its real path). */
  root: string;
  /** The record as it was when the root was reached. */
  rec: ContainerRecord;
  running: boolean;
}

/**
 * Runs `fn` with the container's root filesystem. A running container's
 * root is its mount; a stopped one's is mounted for the call and unmounted
 * after, holding the container's lock so that a `start` meanwhile waits
 * (and cannot find its root unmounted under it).
 */
export async function withContainerRoot<T>(
  c: Containers,
  ref: string,
  fn: (access: RootAccess) => Promise<T>,
): Promise<T> {
  for (;;) {
    const rec = c.store.get(ref);
    if (isRunning(c, rec) && rec.state.rootfs) {
      return fn({ root: realpathSync(rec.state.rootfs), rec, running: true });
    }
    const lock = lockFile(c.store.lockPath(rec.id));
    if (!lock) throw new HutchError('LOCK', `could not lock container ${rec.name}`);
    let mounted = false;
    try {
      const now = c.store.read(rec.id);
      if (!now) throw new HutchError('NO_SUCH_CONTAINER', `no such container: ${ref}`);
      // Started while we waited for the lock: use its mount instead.
      if (isRunning(c, now) && now.state.rootfs) continue;
      const driver = c.images.driver;
      const root = driver.mountContainer(now.id, rootLayerOf(now));
      mounted = true;
      return await fn({ root: realpathSync(root), rec: now, running: false });
    } finally {
      try {
        // A stale mount of a container that died without cleanup goes too: nothing runs on it.
        if (mounted) c.images.driver.unmountContainer(rec.id);
      } finally {
        lock.release();
      }
    }
  }
}

/**
 * Runs `fn` with the container paused when it runs (docker pauses for
 * commit; hutch also for cp, so that no process swaps a directory for a
 * symbolic link while files are copied). Without a cgroup freezer (rootless
 * without delegated cgroups) it goes on unpaused, with a warning (commit,
 * where the user asked for the pause) or a debug line (`quiet`: cp).
 */
export async function pausedDuring<T>(
  c: Containers,
  access: RootAccess,
  why: string,
  fn: () => Promise<T>,
  quiet = false,
): Promise<T> {
  const rec = access.rec;
  if (!access.running || rec.state.status === 'paused') return fn();
  const runtime = c.runtime(rec.runtime);
  try {
    runtime.pause(rec.id);
  } catch (e) {
    (quiet ? log.debug : log.warn)(
      `could not pause ${rec.name} for ${why} (${(e as Error).message.split('\n')[0]}): going on while it runs`,
    );
    return fn();
  }
  try {
    return await fn();
  } finally {
    try {
      runtime.resume(rec.id);
    } catch (e) {
      log.warn(`could not resume ${rec.name} after ${why}: ${(e as Error).message}`);
    }
  }
}

/** Refuses a terminal as the destination of binary output, as docker does. */
export function refuseTerminal(what: string): void {
  if (process.getBuiltinModule('node:tty').isatty(1)) {
    throw new HutchError(
      'STDOUT_IS_TERMINAL',
      'cowardly refusing to save to a terminal. Use the -o flag or redirect',
      {
        hint: `Write the ${what} to a file with -o FILE, or redirect it: hutch ... > out.tar`,
      },
    );
  }
}

/** Waits until `out` can take more (or fails); the listeners go when it is done. */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (e?: unknown): void => {
      out.off('drain', done);
      out.off('error', done);
      out.off('close', done);
      if (e) reject(e as Error);
      else resolve();
    };
    out.on('drain', done);
    out.on('error', done);
    out.on('close', done);
  });
}

/** Writes a generator's chunks to `out`, waiting whenever it is full. */
export async function writeAll(
  chunks: Iterable<Buffer> | AsyncIterable<Buffer>,
  out: Writable,
): Promise<void> {
  let failed: unknown;
  const onError = (e: unknown): void => {
    failed = e;
  };
  out.on('error', onError);
  try {
    for await (const chunk of chunks) {
      if (failed) throw failed;
      if (!out.write(chunk)) await drained(out);
    }
    if (failed) throw failed;
    await new Promise<void>((resolve, reject) =>
      out.write(Buffer.alloc(0), (e) => (e ? reject(e) : resolve())),
    );
  } finally {
    out.off('error', onError);
  }
}

/** Writes to a file beside `target`, renamed into place when complete. */
export async function toFile(target: string, write: (out: Writable) => Promise<void>): Promise<void> {
  const tmp = tempPathFor(target);
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644, highWaterMark: 1 << 20 });
  try {
    await write(out);
    await new Promise<void>((resolve, reject) => {
      out.once('error', reject);
      out.end(() => resolve());
    });
    renameSync(tmp, target);
  } catch (e) {
    out.destroy();
    rmSync(tmp, { force: true });
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'EACCES') {
      throw new HutchError('OUTPUT_FAILED', `cannot write ${target}: ${(e as Error).message}`, {
        hint: 'Give a file in a directory that exists and that you can write.',
      });
    }
    throw e;
  }
}

export interface ExportOptions {
  /** A file to write; stdout when undefined. */
  output?: string | undefined;
}

export async function exportContainer(ctx: Context, ref: string, opts: ExportOptions = {}): Promise<void> {
  const output = opts.output === '' ? undefined : opts.output;
  if (output === undefined) refuseTerminal('archive');
  const c = openContainers(ctx);
  const target = output === undefined ? undefined : userPath(output);
  await withContainerRoot(c, ref, async ({ root, rec }) => {
    const packer = new TreePacker({
      // The files as the container sees them: through its own ID mapping, if it has one.
      mapOwner: rec.idMappings ? ownerMapper(rec.idMappings, 'to-container') : undefined,
      confine: toBytes(root),
      onSkip: (name, why) => log.debug(`export: left out /${fromBytes(name)}: ${why}`),
    });
    const tar = (function* (): Generator<Buffer> {
      yield* packer.tree(toBytes(root), undefined);
      yield* packer.end();
    })();
    if (target === undefined) await writeAll(tar, process.stdout);
    else await toFile(target, (out) => writeAll(tar, out));
  });
}
