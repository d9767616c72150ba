/**
 * `hutch attach`: joining a running container's streams through conmon's
 * attach socket. Output from now on is written out, stdin (when the
 * container keeps one open) goes in, watched for the detach keys; the
 * attachment lasts until the container exits (its exit code is the
 * command's) or the user detaches (the container runs on).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { attachSocket } from '../../runtime/oci/attach.ts';
import type { Attachment } from '../../runtime/oci/attach.ts';
import { HutchError } from '../../util/errors.ts';
import type { Containers } from './open.ts';
import { waitForExit } from './run.ts';
import { followTerminalSize, forwardStdin, proxySignals } from './streams.ts';
import { runningContainer } from './top.ts';

export interface AttachIo {
  /** Forward our stdin (unless --no-stdin); only for containers that keep stdin open. */
  stdin: boolean;
  write(stream: 1 | 2, data: Buffer): void;
  /** Forward signals to the container (docker's --sig-proxy; never for a terminal, where keys do it). */
  sigProxy: boolean;
  detachKeys: Uint8Array | undefined;
}

export interface AttachResult {
  exitCode: number;
  detached: boolean;
}

/** Did conmon hand the container our stdio directly (foreground `run --rm` without a terminal)? */
function passthrough(rec: ContainerRecord): boolean {
  try {
    const args = readFileSync(`/proc/${rec.state.conmonPid}/cmdline`, 'utf8').split('\0');
    return args.some((a, i) => a === '-l' && args[i + 1] === 'passthrough');
  } catch {
    return false;
  }
}

export async function attachContainer(c: Containers, ref: string, io: AttachIo): Promise<AttachResult> {
  const rec = runningContainer(c, ref, 'attach');
  if (rec.state.status === 'paused') {
    throw new HutchError('CONTAINER_PAUSED', `you cannot attach to a paused container (${rec.name})`, {
      hint: `Unpause it first: hutch unpause ${rec.name}`,
    });
  }
  const socket = c.store.attachSocket(rec.id);
  if (passthrough(rec) || !existsSync(socket)) {
    throw new HutchError(
      'NO_ATTACH_SOCKET',
      `container ${rec.name} has no attach socket: it was started in the foreground with its output passed straight through`,
      {
        hint: 'Only containers whose streams conmon holds can be attached: start them with `run -d`, `run -t`, or without --rm.',
      },
    );
  }
  let attachment: Attachment;
  try {
    attachment = attachSocket(socket, io.write);
  } catch (e) {
    throw new HutchError('ATTACH_FAILED', `cannot attach to ${rec.name}: ${(e as Error).message}`, {
      hint: 'The container may have just exited: see `hutch ps -a`.',
    });
  }

  const tty = rec.config.tty;
  let onDetach: (() => void) | undefined;
  const detached = new Promise<void>((r) => (onDetach = r));
  const undo = [followTerminalSize(c, rec)];
  if (io.stdin && rec.config.openStdin) {
    undo.push(
      forwardStdin(attachment, { tty, keys: io.detachKeys, passEof: false, onDetach: () => onDetach?.() }),
    );
  }
  const unproxy = io.sigProxy && !tty ? proxySignals(c, rec) : () => {};
  // On detach nothing is waited for any more: no watcher may keep this process alive.
  const stopWaiting = new AbortController();
  try {
    const result = await Promise.race([
      waitForExit(c, rec, stopWaiting.signal).then((code) => ({ code })),
      detached.then(() => undefined),
    ]);
    if (result === undefined) {
      stopWaiting.abort();
      return { exitCode: 0, detached: true };
    }
    // Output still in flight when the exit was recorded: conmon closes the socket once drained.
    await Promise.race([attachment.done, new Promise((r) => setTimeout(r, 2000).unref())]);
    return { exitCode: result.code, detached: false };
  } finally {
    attachment.close();
    unproxy();
    for (const u of undo) u();
  }
}
