/**
 * Starting one of hutch's small network helpers (hutch-portfwd,
 * hutch-handoff): it runs detached, in its own session, and says "ready" on
 * stdout once it serves; hutch records its pid and ends it with the
 * container. Whatever it says on stderr before that is the error.
 */
import { HutchError } from '../util/errors.ts';

export async function startReadyHelper(
  program: string,
  args: string[],
  failure: { what: string; hint: string },
): Promise<number> {
  const { spawn } = process.getBuiltinModule('node:child_process');
  const child = spawn(program, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
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
    throw new HutchError('NETWORK_SETUP', `${failure.what}: ${err.trim() || 'it ended without a message'}`, {
      hint: failure.hint,
    });
  }
  return child.pid;
}
