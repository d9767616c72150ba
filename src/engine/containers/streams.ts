/**
 * What a command attached to a container does with its own terminal: it
 * forwards stdin (holding back a possible detach sequence), keeps the
 * container's terminal size in step, and passes signals on. Shared by a
 * foreground `run`/`start -a` and `attach`.
 */
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { resizeTerminal } from '../../runtime/oci/attach.ts';
import type { Attachment } from '../../runtime/oci/attach.ts';
import type { Containers } from './open.ts';

export interface StdinOptions {
  tty: boolean;
  /** The detach sequence (ctrl-p,ctrl-q by default); none: detaching is off. */
  keys: Uint8Array | undefined;
  onDetach: () => void;
  /** Pass our EOF on (run); attach leaves the container's stdin open for later attachments, as docker does. */
  passEof: boolean;
}

/** Forwards stdin to the container; returns the undo (raw mode off, reading paused). */
export function forwardStdin(attachment: Attachment, o: StdinOptions): () => void {
  const stdin = process.stdin;
  if (o.tty && stdin.isTTY) stdin.setRawMode(true);
  // Bytes that may begin the detach sequence are held back until it is complete (detach) or broken (sent).
  let held: number[] = [];
  stdin.on('data', (chunk: Buffer) => {
    const keys = o.keys;
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
        o.onDetach();
        return;
      }
    }
    if (pass.length) attachment.write(Uint8Array.from(pass));
  });
  if (o.passEof) stdin.on('end', () => attachment.closeStdin());
  return () => {
    if (o.tty && stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
  };
}

/** Keeps the container's terminal the size of ours; returns the undo. */
export function followTerminalSize(c: Containers, rec: ContainerRecord): () => void {
  if (!rec.config.tty || !process.stdout.isTTY) return () => {};
  const resize = (): void =>
    resizeTerminal(c.store.bundle(rec.id), process.stdout.rows, process.stdout.columns);
  resize();
  process.stdout.on('resize', resize);
  return () => process.stdout.off('resize', resize);
}

/** Passes the signals a user sends us on to the container (docker's --sig-proxy); returns the undo. */
export function proxySignals(c: Containers, rec: ContainerRecord): () => void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  const handler = (sig: NodeJS.Signals): void => {
    try {
      c.runtime(rec.runtime).kill(rec.id, sig);
    } catch {
      // The container may have just exited: the wait for its exit sees that.
    }
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
