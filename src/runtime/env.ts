/**
 * A container's environment: the image's, then `--env-file`s, then `-e`s,
 * later settings of a name replacing earlier ones, with docker's rules for
 * each and the variables every container gets.
 */
import { HutchError } from '../util/errors.ts';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const BOM = '\uFEFF';

function badLine(file: string, lineNo: number, why: string): HutchError {
  return new HutchError('BAD_ENV_FILE', `${file}:${lineNo}: ${why}`, {
    hint: 'Each line of an env file is KEY=VALUE, or KEY to pass the value of your own environment; # starts a comment.',
  });
}

/**
 * The `K=V` entries of an env file, docker's way: blank lines and `#` lines
 * are skipped, leading whitespace is dropped, and the value is the rest of
 * the line exactly (no quotes removed, no trailing whitespace trimmed). A
 * bare `KEY` takes the value from `hostEnv`, or is left out when unset.
 */
export function parseEnvFile(text: string, file: string, hostEnv: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  const lines = (text.startsWith(BOM) ? text.slice(1) : text).split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trimStart();
    // Lines end at \n; a \r before it belongs to the ending (files from Windows).
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (key === '') throw badLine(file, i + 1, 'no variable name before =');
    if (/\s/.test(key)) throw badLine(file, i + 1, `variable ${JSON.stringify(key)} contains whitespace`);
    if (eq >= 0) out.push(line);
    else if (hostEnv[key] !== undefined) out.push(`${key}=${hostEnv[key]}`);
  }
  return out;
}

/** One `-e`: `K=V` as it is; `K` takes the value from `hostEnv`, or is dropped when unset (docker). */
export function parseEnvFlag(value: string, hostEnv: NodeJS.ProcessEnv): string | undefined {
  const eq = value.indexOf('=');
  const key = eq < 0 ? value : value.slice(0, eq);
  if (key === '') {
    throw new HutchError('BAD_FLAG', `invalid environment variable: ${JSON.stringify(value)}`, {
      hint: 'Write -e KEY=VALUE, or -e KEY to pass the value of your own environment.',
    });
  }
  if (eq >= 0) return value;
  const host = hostEnv[key];
  return host === undefined ? undefined : `${key}=${host}`;
}

export interface MergeEnvOptions {
  /** The image config's Env. */
  image: string[];
  /** Sets HOSTNAME, as docker does; the user's own setting still wins. */
  hostname?: string;
  tty: boolean;
  /** Results of parseEnvFile, all files in order. */
  files: string[];
  /** Results of parseEnvFlag, in order. */
  flags: string[];
}

/**
 * The final `K=V` list. The defaults come first (PATH, HOSTNAME, TERM with a
 * terminal, `container=hutch` so software can tell it runs in a container,
 * as podman's `container=podman`); then the image's, the files' and the
 * flags' entries, each replacing an earlier one of the same name in place,
 * so order is by first appearance.
 */
export function mergeEnv(opts: MergeEnvOptions): string[] {
  const byKey = new Map<string, string>();
  const set = (entry: string): void => {
    // `K` without `=` (an odd image config) or `=V` is no variable a process can have: leave it out.
    const eq = entry.indexOf('=');
    if (eq > 0) byKey.set(entry.slice(0, eq), entry);
  };
  set(`PATH=${DEFAULT_PATH}`);
  if (opts.hostname !== undefined) set(`HOSTNAME=${opts.hostname}`);
  if (opts.tty) set('TERM=xterm');
  set('container=hutch');
  for (const list of [opts.image, opts.files, opts.flags]) for (const entry of list) set(entry);
  return [...byKey.values()];
}
