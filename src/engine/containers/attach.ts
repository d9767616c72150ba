/**
 * `hutch attach`: joining a running container's streams through conmon's
 * attach socket. Output from now on is written out, stdin (when the
 * container keeps one open) goes in, watched for the detach keys; the
 * attachment lasts until the container exits (its exit code is the
 * command's) or the user detaches (the container runs on).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { attachSocket, resizeTerminal } from '../../runtime/oci/attach.ts';
import type { Attachment } from '../../runtime/oci/attach.ts';
import { HutchError } from '../../util/errors.ts';
import type { Containers } from './open.ts';
import { waitForExit } from './run.ts';
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

function proxySignals(c: Containers, rec: ContainerRecord): () => void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  const handler = (sig: NodeJS.Signals): void => {
    try {
      c.runtime(rec.runtime).kill(rec.id, sig);
    } catch {
      // It may have just exited; the wait below sees that.
    }
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
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
  const resize = (): void =>
    resizeTerminal(c.store.bundle(rec.id), process.stdout.rows, process.stdout.columns);
  if (tty && process.stdout.isTTY) {
    resize();
    process.stdout.on('resize', resize);
  }

  let onDetach: (() => void) | undefined;
  const detached = new Promise<void>((r) => (onDetach = r));
  const stdin = process.stdin;
  const forwarding = io.stdin && rec.config.openStdin;
  if (forwarding) {
    if (tty && stdin.isTTY) stdin.setRawMode(true);
    // Bytes that may begin the detach sequence are held back until it is complete (detach) or broken (sent).
    let held: number[] = [];
    stdin.on('data', (chunk: Buffer) => {
      const keys = io.detachKeys;
      if (!keys || keys.length === 0 || (held.length === 0 && !chunk.includes(keys[0]!))) {
        attachment.write(chunk);
        return;
      }
      const pass: number[] = [];
      for (const byte of chunk) {
        if (byte !== keys[held.length]) {
          pass.push(...held);
          held = [];
        }
        if (byte !== keys[held.length]) {
          pass.push(byte);
          continue;
        }
        held.push(byte);
        if (held.length === keys.length) {
          if (pass.length) attachment.write(Uint8Array.from(pass));
          onDetach?.();
          return;
        }
      }
      if (pass.length) attachment.write(Uint8Array.from(pass));
    });
    // Our EOF is not passed on: the container's stdin stays open for later attachments, as
    // docker keeps it for a container run with -i.
  }
  const unproxy = io.sigProxy && !tty ? proxySignals(c, rec) : () => {};
  try {
    const result = await Promise.race([
      waitForExit(c, rec).then((code) => ({ code })),
      detached.then(() => undefined),
    ]);
    if (result === undefined) return { exitCode: 0, detached: true };
    // Output still in flight when the exit was recorded: conmon closes the socket once drained.
    await Promise.race([attachment.done, new Promise((r) => setTimeout(r, 2000).unref())]);
    return { exitCode: result.code, detached: false };
  } finally {
    attachment.close();
    unproxy();
    process.stdout.off('resize', resize);
    if (forwarding) {
      if (tty && stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
    }
  }
}
