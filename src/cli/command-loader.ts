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
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
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

function loadScript(file: string, name: string): CommandModule {
  const vm = process.getBuiltinModule('node:vm');
  const source = readFileSync(file, 'utf8');
  const dir = cacheDir();
  // V8 checks a cache against the source's length only: the key names the file's version.
  const st = statSync(file);
  const key = `${name}-${st.size}-${Math.trunc(st.mtimeMs)}-${st.ino}.bin`;
  let cachedData: Buffer | undefined;
  if (dir) {
    try {
      cachedData = readFileSync(join(dir, key));
    } catch {
      // Not made yet.
    }
  }
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
  if (dir && (cachedData === undefined || script.cachedDataRejected)) {
    // Only after a run that succeeded: a usage error's run compiles little of the command.
    process.once('exit', (code) => {
      if (code === 0) saveCache(dir, key, name, script);
    });
  }
  return module.exports;
}

/** Writes the cache (temporary file, then rename) and drops the command's older ones; never fails the command. */
function saveCache(dir: string, key: string, name: string, script: { createCachedData(): Buffer }): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.tmp-${key}-${process.pid}`);
    writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
    renameSync(tmp, join(dir, key));
    for (const f of readdirSync(dir)) {
      if (f.startsWith(`${name}-`) && f !== key) rmSync(join(dir, f), { force: true });
    }
  } catch {
    // A cache is only a shortcut: the next run compiles again.
  }
}

/** The command's module from the bundle, or undefined when running from the sources. */
export function bundledCommand(name: string): Promise<CommandModule> | undefined {
  const file = fileURLToPath(new URL(`./commands/${name}.cjs`, import.meta.url));
  if (!existsSync(file)) return undefined;
  try {
    return Promise.resolve(loadScript(file, name));
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
