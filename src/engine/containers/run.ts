/**
 * A container in the foreground: `run` without -d, `start -a`. The CLI
 * attaches (or, for `run --rm` without a terminal, hands the container its
 * own stdio through conmon's passthrough mode: no copy of any byte), waits
 * for the exit recorded by conmon, proxies signals, and cleans up.
 */
import { existsSync, rmSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { monitorAlive, readExitFile } from '../../runtime/containers/liveness.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { attachSocket } from '../../runtime/oci/attach.ts';
import type { Attachment } from '../../runtime/oci/attach.ts';
import { cleanupContainer } from './cleanup.ts';
import type { Containers } from './open.ts';
import { ownerFile, startContainer } from './start.ts';
import type { StartMode } from './start.ts';
import { followTerminalSize, forwardStdin, proxySignals } from './streams.ts';

export interface ForegroundIo {
  stdin: boolean;
  /** Write the container's output. */
  write(stream: 1 | 2, data: Buffer): void;
  /** Proxy SIGINT/SIGTERM/... to the container (docker's --sig-proxy). */
  sigProxy: boolean;
  detachKeys: Uint8Array | undefined;
}

/** Resolves with the exit code once conmon has recorded the container's exit. */
export function waitForExit(c: Containers, rec: ContainerRecord, signal?: AbortSignal): Promise<number> {
  const file = c.store.exitFile(rec.id);
  return new Promise((resolve) => {
    let watcher: FSWatcher | undefined;
    const poll: { timer?: NodeJS.Timeout } = {};
    const check = (): boolean => {
      const exit = readExitFile(file);
      if (exit) {
        finish(exit.code);
        return true;
      }
      if (!monitorAlive(rec.state) && !existsSync(file)) {
        finish(255);
        return true;
      }
      return false;
    };
    const finish = (code: number): void => {
      watcher?.close();
      if (poll.timer) clearInterval(poll.timer);
      resolve(code);
    };
    try {
      watcher = watch(c.store.exitsDir, (_ev, name) => {
        if (name === rec.id) check();
      });
    } catch {
      // No inotify: the poll below still sees the exit.
    }
    if (check()) return;
    poll.timer = setInterval(check, 250);
    // On detach nothing is waited for any more: no watcher may keep this process alive.
    signal?.addEventListener('abort', () => finish(-1), { once: true });
  });
}

export interface ForegroundResult {
  exitCode: number;
  detached: boolean;
}

/** Starts the container attached and waits for it; for `run` and `start -a`. */
export async function runForeground(
  c: Containers,
  rec: ContainerRecord,
  io: ForegroundIo,
  passthrough: StartMode | undefined,
): Promise<ForegroundResult> {
  let attachment: Attachment | undefined;
  let detached = false;
  let detachResolve: (() => void) | undefined;
  const detachedPromise = new Promise<void>((r) => (detachResolve = r));
  const undo: (() => void)[] = [];
  const started = await startContainer(
    c,
    rec.id,
    passthrough ?? { kind: 'detached' },
    async () => {
      if (passthrough) return;
      const a = attachSocket(c.store.attachSocket(rec.id), io.write);
      attachment = a;
      undo.push(followTerminalSize(c, rec));
      if (io.stdin && rec.config.openStdin) {
        undo.push(
          forwardStdin(a, {
            tty: rec.config.tty,
            keys: io.detachKeys,
            passEof: true,
            onDetach: () => {
              detached = true;
              detachResolve?.();
            },
          }),
        );
      }
    },
    // This process cleans up after the container, so the exit hook need not start Node;
    // with a restart policy the exit command must run to apply it.
    { owner: rec.hostConfig.restartPolicy.name === 'no' },
  );
  // The sync pipe is no longer needed: conmon goes on alone.
  started.conmon.release();
  const unproxy = io.sigProxy && !rec.config.tty ? proxySignals(c, started.rec) : () => {};
  try {
    const stopWaiting = new AbortController();
    const exited = waitForExit(c, started.rec, stopWaiting.signal);
    const result = await Promise.race([
      exited.then((code) => ({ code })),
      detachedPromise.then(() => undefined),
    ]);
    if (result === undefined) {
      stopWaiting.abort();
      attachment?.close();
      return { exitCode: 0, detached: true };
    }
    // Output still in flight when the exit was recorded: conmon closes the socket after draining.
    if (attachment) await Promise.race([attachment.done, new Promise((r) => setTimeout(r, 2000))]);
    attachment?.close();
    await cleanupContainer(c, rec.id, false);
    rmSync(ownerFile(c, rec.id), { force: true });
    return { exitCode: result.code, detached };
  } finally {
    unproxy();
    // process.stdin was touched only if it was used: its first access loads Node's streams (~6 ms).
    for (const u of undo) u();
  }
}
