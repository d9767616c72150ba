// Bundles the CLI into dist/ with esbuild: one small entry file plus chunks
// that load on demand, so start-up reads only what the command needs.
import { build } from 'esbuild';
import { builtinModules, createRequire } from 'node:module';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const require = createRequire(import.meta.url);
// The builtin shims list the exports of the Node that builds them: build with
// the pinned Node (npm run build does), not an older system one.
if (Number(process.versions.node.split('.')[0]) < 24) {
  console.error(`build with Node >= 24 (this is ${process.version}): use 'npm run build'`);
  process.exit(1);
}

/**
 * `import { x } from 'node:fs'` in ESM builds the module's whole namespace,
 * which runs Node's lazy getters (fs.promises, fs.ReadStream, ...) and loads
 * streams, readline and more: about 30 internal modules and several
 * milliseconds on every command. This plugin gives each builtin import a
 * shim over process.getBuiltinModule that exports only plain properties;
 * getter-backed ones are left out (import them from their own specifier,
 * e.g. node:fs/promises), so the build fails loudly if code asks for one.
 */
/** Builtins costly to load that hutch uses only through functions: bound on first call. */
const DEFERRED = new Set(['crypto', 'child_process', 'zlib', 'net', 'dgram', 'os']);

const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    const names = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    // Only ES imports: a dependency's require() already gets the plain CommonJS module.
    b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) =>
      names.has(args.path) && args.namespace !== 'builtin-shim' && args.kind === 'import-statement'
        ? { path: args.path.replace(/^node:/, ''), namespace: 'builtin-shim' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'builtin-shim' }, (args) => {
      const mod = require(`node:${args.path}`);
      const plain = Object.keys(mod).filter((k) => {
        const d = Object.getOwnPropertyDescriptor(mod, k);
        return d && !d.get && /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default';
      });
      if (DEFERRED.has(args.path)) {
        // Loaded on the first call: node:crypto alone costs ~11 ms to load, and
        // most commands that bundle a hashing helper never hash anything.
        const fns = plain.filter((k) => typeof mod[k] === 'function');
        return {
          contents:
            `let m;\nconst mod = () => (m ??= process.getBuiltinModule(${JSON.stringify(`node:${args.path}`)}));\n` +
            fns
              .map(
                (k) =>
                  `export const ${k} = function (...a) { return new.target ? new (mod().${k})(...a) : mod().${k}.apply(this, a); };`,
              )
              .join('\n'),
          loader: 'js',
        };
      }
      return {
        contents:
          `const m = process.getBuiltinModule(${JSON.stringify(`node:${args.path}`)});\n` +
          'export default m;\n' +
          // Pure, so a name no importer uses is dropped with its read: some
          // plain-looking properties load a module when read (fs.Dir loads
          // internal/fs/dir).
          plain.map((k) => `export const ${k} = /* @__PURE__ */ (() => m.${k})();`).join('\n'),
        loader: 'js',
      };
    });
  },
};

/** undici's require() of node:NAME, from the files IMPORTER matches, gets the module CONTENTS instead. */
function stubForUndici(b, name, importer, contents) {
  const namespace = `lazy-${name}`;
  b.onResolve({ filter: new RegExp(`^(node:)?${name}$`) }, (args) =>
    importer.test(args.importer) && args.kind === 'require-call' ? { path: name, namespace } : undefined,
  );
  b.onLoad({ filter: /.*/, namespace }, () => ({ contents, loader: 'js' }));
}

/**
 * undici loads node:http2 when it loads its client (~20 ms of every pull),
 * for HTTP/2, which hutch never turns on (allowH2 stays off). Its loader
 * already copes with an http2 that has no constants; this one has none and
 * loads the real module only if a connection ever asks for HTTP/2.
 *
 * It loads node:http (~5 ms with its agent, client and server) for two
 * things: the default maximum header size, and IncomingMessage, which it
 * compares a request body's class with to work around an old Node bug when
 * destroying one; hutch never sends an IncomingMessage. The stub gives
 * Node's default size, and the real module's when a flag changes it.
 * (Its node:assert is made lazy too: see below.)
 */
const undiciWithoutHttp = {
  name: 'undici-without-http',
  setup(b) {
    stubForUndici(
      b,
      'http2',
      /undici[\\/]lib[\\/]dispatcher[\\/]client-h2\.js$/,
      "module.exports = { constants: {}, connect: (...a) => process.getBuiltinModule('node:http2').connect(...a) };",
    );
    stubForUndici(
      b,
      'http',
      /undici[\\/]lib[\\/](dispatcher[\\/]client|core[\\/]util)\.js$/,
      [
        "const flagged = /max-http-header-size/.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`);",
        'module.exports = {',
        "  maxHeaderSize: flagged ? process.getBuiltinModule('node:http').maxHeaderSize : 16 * 1024,",
        '  IncomingMessage: class NeverSentByHutch {},',
        '};',
      ].join('\n'),
    );
    // undici checks its own invariants with assert(value) at every step, and
    // loading node:assert costs ~6 ms of every pull (its error classes, diff
    // and colour code). The stub passes a true value through and hands
    // anything else, and any other use, to the real module.
    stubForUndici(
      b,
      'assert',
      /undici[\\/]/,
      [
        "const real = () => process.getBuiltinModule('node:assert');",
        'function assert(value, message) {',
        '  if (!value) real()(value, message);',
        '}',
        'module.exports = new Proxy(assert, { get: (t, k) => (k in t ? t[k] : real()[k]) });',
      ].join('\n'),
    );
  },
};

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
/**
 * Commands are bundled apart from the entry: the entry (argument parsing,
 * output, errors) is one file and each command one more, self-contained, so
 * any command loads exactly two files. The entry loads them as scripts
 * (src/cli/command-loader.ts); the import left here is the one a run from
 * the sources takes, and names no file of the bundle.
 */
const commandsAsFiles = {
  name: 'commands-as-files',
  setup(b) {
    b.onResolve({ filter: /^\.\/[a-z-]+\.ts$/ }, (args) =>
      args.importer.endsWith('src/cli/commands/index.ts')
        ? { path: `./commands/${args.path.slice(2, -3)}.mjs`, external: true }
        : undefined,
    );
  },
};

/** Dynamic imports of `*.lazy.ts` stay separate files under dist/lazy/. */
function lazyModules(prefix) {
  return {
    name: 'lazy-modules',
    setup(b) {
      b.onResolve({ filter: /\.lazy\.ts$/ }, (args) =>
        args.kind === 'dynamic-import'
          ? { path: `${prefix}lazy/${args.path.split('/').pop().replace(/\.ts$/, '.mjs')}`, external: true }
          : undefined,
      );
    },
  };
}

function lazyEntries(dir = 'src') {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? lazyEntries(`${dir}/${e.name}`)
      : e.name.endsWith('.lazy.ts')
        ? [`${dir}/${e.name}`]
        : [],
  );
}

const common = {
  banner: {
    // Bundled CommonJS dependencies (undici) call require(), for Node's builtins only:
    // those come from process.getBuiltinModule, and node:module (half a millisecond
    // of every command) is loaded only for anything else.
    js: [
      'let nodeRequire;',
      'function require(id) {',
      '  return process.getBuiltinModule(id) ??',
      "    (nodeRequire ??= process.getBuiltinModule('node:module').createRequire(import.meta.url))(id);",
      '}',
    ].join('\n'),
  },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  outExtension: { '.js': '.mjs' },
  minifyWhitespace: true,
  minifySyntax: true,
  // External: a sourceMappingURL comment makes Node cache the map on every start.
  sourcemap: 'external',
  legalComments: 'none',
  logLevel: 'warning',
  define: {
    HUTCH_VERSION: JSON.stringify(pkg.version),
    HUTCH_BUILT: JSON.stringify(new Date().toISOString()),
  },
};

/**
 * Writes the command scripts, their dynamic imports (the lazy modules, the
 * only ones) turned into calls of the loader's __hutchImport: a script run by
 * node:vm has no module loader of its own.
 */
function commandScripts(result) {
  for (const f of result.outputFiles) {
    let text = f.text;
    if (f.path.endsWith('.cjs')) {
      text = text.replace(/\bimport\((?=["']\.\.\/lazy\/)/g, '__hutchImport(');
      const left = /\bimport\(["'`]/.exec(text);
      if (left)
        throw new Error(
          `${f.path}: a dynamic import the command loader cannot serve: ${text.slice(left.index, left.index + 80)}`,
        );
    }
    mkdirSync(dirname(f.path), { recursive: true });
    writeFileSync(f.path, text);
  }
}

const commandFiles = readdirSync(new URL('../src/cli/commands', import.meta.url))
  .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
  .map((f) => `src/cli/commands/${f}`);

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
await Promise.all([
  build({
    ...common,
    // A CommonJS entry: Node starts one about a millisecond sooner than an ES
    // module, whose loader it would set up first. The dynamic imports (the
    // modules of dist/lazy) stay import() and load as ES modules.
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
    banner: {
      js: '"use strict";const __hutchEntryUrl = process.getBuiltinModule("node:url").pathToFileURL(__filename).href;',
    },
    define: { ...common.define, 'import.meta.url': '__hutchEntryUrl' },
    entryPoints: { hutch: 'src/cli/entry.ts' },
    outdir: 'dist',
    splitting: false,
    plugins: [lazyBuiltins, commandsAsFiles, lazyModules('./')],
  }),
  build({
    ...common,
    // Scripts, not ES modules: src/cli/command-loader.ts runs each with a V8
    // code cache made after the command ran. The function it wraps them in
    // gives require (Node's builtins), the file's URL, and an import() for
    // the modules of dist/lazy (see commandScripts).
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
    banner: {},
    define: { ...common.define, 'import.meta.url': '__hutchModuleUrl' },
    entryPoints: commandFiles,
    outdir: 'dist/commands',
    // No shared chunks: every command is one file, which its code cache covers whole.
    splitting: false,
    write: false,
    plugins: [lazyBuiltins, undiciWithoutHttp, lazyModules('../')],
  }).then(commandScripts),
  build({
    ...common,
    entryPoints: Object.fromEntries(lazyEntries().map((f) => [f.split('/').pop().replace(/\.ts$/, ''), f])),
    outdir: 'dist/lazy',
    splitting: false,
    plugins: [lazyBuiltins, undiciWithoutHttp],
  }),
]);
