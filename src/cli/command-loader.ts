/**
 * Loads a command from the bundle (dist/commands/NAME.cjs) as a script with
 * a V8 code cache of its own, made when the command ends.
 *
 * Node's compile cache (NODE_COMPILE_CACHE, which the launcher turns on)
 * keeps what V8 compiled when a module was loaded: its top level. Every
 * function a command calls afterwards is still parsed and compiled on each
 * run, about 8 ms of `ps` and 14 ms of `run`. A cache made after the command
 * ran holds those functions too. It is written the first time a command
 * succeeds (or when V8 rejects it, after a Node upgrade), next to Node's:
 * $XDG_CACHE_HOME/hutch/code-cache (or ~/.cache/hutch/code-cache), in the
 * user's own directory, since a planted cache would be run as code.
 *
 * From the sources (tests), where no .cjs lies beside this module, the
 * command's own import is used.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CommandSpec } from './args/spec.ts';

type CommandModule = { command: CommandSpec };

/** Where the code caches go; undefined when there is no home, or caching is turned off. */
function cacheDir(env = process.env): string | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  const base = env.XDG_CACHE_HOME?.startsWith('/')
    ? env.XDG_CACHE_HOME
    : env.HOME?.startsWith('/')
      ? join(env.HOME, '.cache')
      : undefined;
  return base && join(base, 'hutch', 'code-cache', `${process.version}-${process.arch}`);
}

/** Node's builtins only: the bundle holds everything else. */
function builtinRequire(id: string): unknown {
  const m = process.getBuiltinModule(id);
  if (m === undefined) throw new Error(`hutch's bundle asked for ${id}, which is not a Node builtin`);
  return m;
}

/**
 * The flags of this command line, by name: what decides, more than anything,
 * which of a command's functions a run calls. (`-aq` gives a and q; values
 * and operands are left out, so they never make a line look new.)
 */
export function flagSignature(argv: readonly string[]): string {
  const names = new Set<string>();
  for (const a of argv) {
    if (a === '--') break;
    if (a.startsWith('--')) names.add(a.slice(2).split('=')[0]!);
    else if (a.startsWith('-') && a.length > 1) for (const c of a.slice(1)) names.add(c);
  }
  return [...names].sort().join(',');
}

function readIfThere(path: string, encoding?: 'utf8'): Buffer | string | undefined {
  try {
    return encoding ? readFileSync(path, encoding) : readFileSync(path);
  } catch {
    return undefined;
  }
}

function loadScript(file: string, name: string, st: Stats): CommandModule {
  const vm = process.getBuiltinModule('node:vm');
  const source = readFileSync(file, 'utf8');
  const dir = cacheDir();
  // V8 checks a cache against the source's length only: the key names the file's version.
  const key = `${name}-${st.size}-${Math.trunc(st.mtimeMs)}-${st.ino}`;
  const cachedData = dir ? (readIfThere(join(dir, `${key}.bin`)) as Buffer | undefined) : undefined;
  const url = pathToFileURL(file).href;
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __hutchModuleUrl, __hutchImport) {${source}\n})`,
    { filename: file, cachedData },
  );
  const module = { exports: {} as CommandModule };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  run(
    module.exports,
    builtinRequire,
    module,
    file,
    url,
    (specifier: string) => import(new URL(specifier, url).href),
  );
  if (dir) {
    // A cache holds the functions of the runs that made it: one more is added
    // (V8's new cache keeps what it read) when a line of flags not seen before
    // succeeds, so `ps -aq` first does not leave `ps -a` compiling its table.
    const sig = flagSignature(process.argv.slice(2)) || '(none)';
    const fresh = cachedData === undefined || script.cachedDataRejected === true;
    const seen = fresh
      ? []
      : ((readIfThere(join(dir, `${key}.seen`), 'utf8') as string | undefined) ?? '').split('\n');
    if (fresh || !seen.includes(sig)) {
      process.once('exit', (code) => {
        // Only after a run that succeeded: a usage error's run compiles little of the command.
        if (code === 0) saveCache(dir, key, name, script, [...seen.filter((l) => l !== ''), sig]);
      });
    }
  }
  return module.exports;
}

/** Writes the cache and its flag lines (temporary files, then rename), drops the command's older ones; never fails the command. */
function saveCache(
  dir: string,
  key: string,
  name: string,
  script: { createCachedData(): Buffer },
  seen: string[],
): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const put = (file: string, data: Buffer | string): void => {
      const tmp = join(dir, `.tmp-${file}-${process.pid}`);
      writeFileSync(tmp, data, { mode: 0o600 });
      renameSync(tmp, join(dir, file));
    };
    // The lines after the cache: lines that name a cache they are not part of would keep it thin.
    put(`${key}.bin`, script.createCachedData());
    put(`${key}.seen`, `${seen.join('\n')}\n`);
    // This command's caches of earlier builds (image-prune's are not image's).
    const mine = new RegExp(`^${name}-\\d+-\\d+-\\d+\\.(bin|seen)$`);
    for (const f of readdirSync(dir)) {
      if (mine.test(f) && !f.startsWith(`${key}.`)) rmSync(join(dir, f), { force: true });
    }
  } catch {
    // A cache is only a shortcut: the next run compiles again.
  }
}

/** The command's module from the bundle, or undefined when running from the sources. */
export function bundledCommand(name: string): Promise<CommandModule> | undefined {
  const file = fileURLToPath(new URL(`./commands/${name}.cjs`, import.meta.url));
  // One stat both tells the bundle from the sources and keys the cache.
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st) return undefined;
  try {
    return Promise.resolve(loadScript(file, name, st));
  } catch (e) {
    return Promise.reject(e as Error);
  }
}

/** A command table entry's loader: the bundle's script when there is one, else the import. */
export function commandLoader(
  name: string,
  fromSource: () => Promise<CommandModule>,
): () => Promise<CommandModule> {
  return () => bundledCommand(name) ?? fromSource();
}
