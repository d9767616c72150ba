/** Signal names and numbers as docker accepts them: KILL, SIGKILL, 9, SIGRTMIN+3. */
import { HutchError } from '../../util/errors.ts';

const SIGRTMIN = 34;
const SIGRTMAX = 64;

export interface Signal {
  name: string;
  number: number;
}

let byName: Record<string, number> | undefined;

/** Node's table of signal numbers, read when first asked for: node:os is not loaded on every start. */
function signalNumbers(): Record<string, number> {
  return (byName ??= process.getBuiltinModule('node:os').constants.signals as Record<string, number>);
}

export function parseSignal(input: string): Signal {
  const s = input.trim().toUpperCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > SIGRTMAX) throw badSignal(input);
    const name =
      Object.entries(signalNumbers()).find(([, v]) => v === n)?.[0] ??
      (n >= SIGRTMIN ? `SIGRTMIN+${n - SIGRTMIN}` : `SIG${n}`);
    return { name, number: n };
  }
  const name = s.startsWith('SIG') ? s : `SIG${s}`;
  const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name) ?? /^SIGRTMAX(?:-(\d+))?$/.exec(name);
  if (rt) {
    const off = Number(rt[1] ?? 0);
    const n = name.startsWith('SIGRTMIN') ? SIGRTMIN + off : SIGRTMAX - off;
    if (n < SIGRTMIN || n > SIGRTMAX) throw badSignal(input);
    return { name, number: n };
  }
  const n = signalNumbers()[name];
  if (n === undefined) throw badSignal(input);
  return { name, number: n };
}

function badSignal(input: string): HutchError {
  return new HutchError('BAD_SIGNAL', `invalid signal: ${input}`, {
    hint: 'Use a name (TERM, SIGKILL, SIGRTMIN+3) or a number (15).',
  });
}
