/**
 * The benchmark harness: `npm run bench -- [options]` (or
 * `node_modules/.bin/node bench/main.ts [options]`). See bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { hutchNodeOf, removeBenchDirs, runBaseDir, type EngineSetup } from './engines.ts';
import { gitState, machineInfo, type MachineInfo } from './machine.ts';
import { allScenarios } from './registry.ts';
import { runScenario, type ScenarioResult } from './runner.ts';
import type { Scenario } from './types.ts';
import { startBenchRegistry, stopBenchRegistry } from './oci-registry.ts';
import { asUserArgv, DEFAULT_USER, ensureRuntimeDir, lookupUser } from './user.ts';

const SCRIPT = fileURLToPath(import.meta.url);
const REPO = resolve(dirname(SCRIPT), '..');

const USAGE = `usage: npm run bench -- [options] [SCENARIO...]

  SCENARIO, --scenario NAME
                    run only this scenario (repeatable; default: all)
  --rounds N        timed rounds per scenario (default: each scenario's own)
  --list            list the scenarios and exit
  --hutch PATH      time this hutch launcher instead of bin/hutch
  --user NAME       the unprivileged user rootless scenarios run as when
                    invoked as root (default: $HUTCH_TEST_USER or ${DEFAULT_USER})
  --no-user         run every scenario as the invoking user, even root
  --keep            keep the bench directory (stores) for inspection
  --strict          exit 1 when a target is missed, not only on errors
  -h, --help        this text`;

interface Options {
  scenarios: string[];
  rounds: number | undefined;
  list: boolean;
  hutch: string | undefined;
  user: string;
  noUser: boolean;
  keep: boolean;
  strict: boolean;
  /** Internal: this process is the re-executed, unprivileged half. */
  asUser: boolean;
  resultFile: string | undefined;
  stamp: string | undefined;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    scenarios: [],
    rounds: undefined,
    list: false,
    hutch: undefined,
    user: process.env.HUTCH_TEST_USER || DEFAULT_USER,
    noUser: false,
    keep: false,
    strict: false,
    asUser: false,
    resultFile: undefined,
    stamp: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i] ?? '';
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--scenario':
        o.scenarios.push(value());
        break;
      case '--rounds': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new UsageError('--rounds needs a positive integer');
        o.rounds = n;
        break;
      }
      case '--list':
        o.list = true;
        break;
      case '--hutch':
        o.hutch = resolve(value());
        break;
      case '--user':
        o.user = value();
        break;
      case '--no-user':
        o.noUser = true;
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--strict':
        o.strict = true;
        break;
      case '--as-user':
        o.asUser = true;
        break;
      case '--result-file':
        o.resultFile = value();
        break;
      case '--stamp':
        o.stamp = value();
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        // A bare word names a scenario: `npm run bench -- run-rm-true`.
        if (!arg.startsWith('-')) {
          o.scenarios.push(arg);
          break;
        }
        throw new UsageError(`unknown option ${argv[i]}`);
    }
  }
  return o;
}

/** An ISO 8601 timestamp in its basic form (no colons), e.g. 20261122T064820Z: safe in a file name. */
function stampNow(): string {
  return new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

function select(all: Scenario[], names: string[]): Scenario[] {
  if (names.length === 0) return all;
  const known = new Set(all.map((s) => s.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new UsageError(
      `no scenario named ${unknown.join(', ')}; there are: ${all.map((s) => s.name).join(', ')}`,
    );
  }
  return all.filter((s) => names.includes(s.name));
}

function listScenarios(all: Scenario[]): void {
  for (const s of all) {
    const t = s.target;
    const bounds = t
      ? [
          t.ratioMax !== undefined ? `hutch/peer<=${t.ratioMax}` : '',
          t.ratioMin !== undefined ? `hutch/peer>=${t.ratioMin}` : '',
          t.vsFloorMax !== undefined ? `hutch/floor<=${t.vsFloorMax}` : '',
        ]
          .filter(Boolean)
          .join(' ')
      : 'no target';
    const who = s.rootful ? 'root' : 'user';
    console.log(
      `${s.name.padEnd(16)} ${String(s.rounds).padStart(3)} rounds  ${who}  ${t?.metric ?? 'time'}: ${bounds}`,
    );
    if (s.description) console.log(`${''.padEnd(16)} ${s.description}`);
  }
}

interface PartResult {
  machine: MachineInfo;
  benchDir: string;
  runBase: string;
  scenarios: ScenarioResult[];
}

/** Runs SCENARIOS in this process, as whoever we are. */
async function runHere(scenarios: Scenario[], o: Options, stamp: string): Promise<PartResult> {
  const setup: EngineSetup = {
    repo: REPO,
    hutchBin: o.hutch ?? join(REPO, 'bin/hutch'),
    hutchNode: hutchNodeOf(REPO),
  };
  const base = process.env.HOME ? join(process.env.HOME, '.cache/hutch-bench') : os.tmpdir();
  const benchDir = join(base, `run-${stamp}-${process.pid}`);
  const runBase = runBaseDir();
  mkdirSync(benchDir, { recursive: true, mode: 0o700 });
  mkdirSync(runBase, { recursive: true, mode: 0o700 });
  const machine = machineInfo(setup.hutchBin, setup.hutchNode, join(benchDir, '.machine'));
  console.log(
    `bench: as ${machine.user.name} (uid ${machine.user.uid}), hutch ${firstLineOf(machine.hutch)}, ` +
      `${machine.podman ?? 'podman unavailable'}, stores under ${benchDir}`,
  );
  const results: ScenarioResult[] = [];
  try {
    for (const [i, s] of scenarios.entries()) {
      await nextTurn();
      if (interrupted) {
        console.log(`bench: interrupted; skipping ${s.name} and what follows`);
        break;
      }
      const dirs = { dir: join(benchDir, s.name), runDir: join(runBase, String(i)) };
      results.push(
        await runScenario(s, setup, dirs, {
          rounds: o.rounds,
          log: (line) => console.log(line),
          stop: () => interrupted,
        }),
      );
      console.log('');
    }
  } finally {
    if (o.keep) console.log(`bench: kept ${benchDir} and ${runBase}`);
    else removeBenchDirs([benchDir, runBase], runBase, (p) => rmSync(p, { recursive: true, force: true }));
  }
  return { machine, benchDir, runBase, scenarios: results };
}

/** `0.1.0` out of `hutch version`'s "Version: 0.1.0" lines; else its first line. */
function firstLineOf(text: string | null): string {
  const t = text ?? 'unknown';
  return /^\s*Version:\s*(\S+)/m.exec(t)?.[1] ?? t.split('\n')[0] ?? 'unknown';
}

/**
 * The checkout as the test user can reach it: this one, or, when it sits
 * below a directory the user cannot enter (CI may clone into /root), a copy
 * in /var/tmp/hutch-bench/tree, hard-linked where the filesystem allows.
 */
function treeFor(user: string): string {
  const reach = (p: string) => spawnSync('runuser', ['-u', user, '--', 'test', '-r', p]).status === 0;
  if (reach(join(REPO, 'bench/main.ts')) && reach(join(REPO, 'bin/hutch'))) return REPO;
  const base = '/var/tmp/hutch-bench';
  const tree = join(base, 'tree');
  mkdirSync(base, { recursive: true, mode: 0o755 });
  rmSync(tree, { recursive: true, force: true });
  console.log(`bench: ${user} cannot read ${REPO}: running from a copy in ${tree}`);
  const linked = spawnSync('cp', ['-al', REPO, tree], { stdio: 'ignore' }).status === 0;
  if (!linked) {
    rmSync(tree, { recursive: true, force: true });
    if (spawnSync('cp', ['-a', REPO, tree], { stdio: 'inherit' }).status !== 0) {
      throw new Error(`copying ${REPO} to ${tree} failed`);
    }
  }
  return tree;
}

/** As root: the rootless scenarios run in a copy of this harness started as the test user. */
function runAsUser(scenarios: Scenario[], o: Options, stamp: string): PartResult {
  const user = lookupUser(o.user);
  if (!user) {
    throw new UsageError(
      `the test user ${o.user} does not exist: create it (useradd -m ${o.user}; ` +
        `usermod --add-subuids 200000-265535 --add-subgids 200000-265535 ${o.user}) or pass --no-user`,
    );
  }
  const runtimeDir = ensureRuntimeDir(user);
  const exchange = mkdtempSync(join(os.tmpdir(), 'hutch-bench-'));
  chownSync(exchange, user.uid, user.gid);
  const resultFile = join(exchange, 'result.json');
  const args = ['--as-user', '--result-file', resultFile, '--stamp', stamp];
  for (const s of scenarios) args.push('--scenario', s.name);
  if (o.rounds !== undefined) args.push('--rounds', String(o.rounds));
  const tree = treeFor(user.name);
  const moved = (p: string): string => (p.startsWith(`${REPO}/`) ? join(tree, p.slice(REPO.length + 1)) : p);
  if (o.hutch !== undefined) args.push('--hutch', moved(o.hutch));
  if (o.keep) args.push('--keep');
  const cmd = asUserArgv(user, runtimeDir, moved(process.execPath), join(tree, 'bench/main.ts'), args);
  console.log(`bench: running ${scenarios.length} rootless scenario(s) as ${user.name} via runuser`);
  try {
    const res = spawnSync(cmd.file, cmd.args, { stdio: 'inherit', cwd: tree });
    if (res.error) throw new Error(`runuser: ${res.error.message}`);
    if (!existsSync(resultFile)) {
      throw new Error(`the harness run as ${user.name} exited ${res.status ?? res.signal} without results`);
    }
    const part = JSON.parse(readFileSync(resultFile, 'utf8')) as PartResult;
    // Whatever the user could not remove (files of unmapped ids), root can.
    if (!o.keep) {
      for (const d of [part.benchDir, part.runBase]) rmSync(d, { recursive: true, force: true });
    }
    return part;
  } finally {
    rmSync(exchange, { recursive: true, force: true });
  }
}

function writeRecord(record: unknown, stamp: string): string {
  const dir = join(REPO, 'bench/results');
  mkdirSync(dir, { recursive: true });
  let file = join(dir, `${stamp}.json`);
  for (let k = 2; existsSync(file); k++) file = join(dir, `${stamp}-${k}.json`);
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  return file;
}

/**
 * Ctrl-C reaches the timed command too (it fails, and its scenario with it);
 * the harness itself finishes that scenario's clean-up (pause processes,
 * stores) and stops before the next one.
 */
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted = true;
  });
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const all = allScenarios();
  if (o.list) {
    listScenarios(all);
    return 0;
  }
  const selected = select(all, o.scenarios);
  const stamp = o.stamp ?? stampNow();

  if (o.asUser) {
    const part = await runHere(selected, o, stamp);
    if (!o.resultFile) throw new UsageError('--as-user needs --result-file');
    writeFileSync(o.resultFile, JSON.stringify(part));
    return 0;
  }

  const startedAt = new Date().toISOString();
  const isRoot = process.getuid?.() === 0;
  const delegate = isRoot && !o.noUser;
  const rootless = delegate ? selected.filter((s) => !s.rootful) : [];
  const here = delegate ? selected.filter((s) => s.rootful) : selected;
  const parts: { runAs: string; part: PartResult }[] = [];
  const registryNeeded = selected.some((s) => s.registry === true) && !process.env.HUTCH_BENCH_REGISTRY;
  if (registryNeeded) process.env.HUTCH_BENCH_REGISTRY = startBenchRegistry(REPO, process.execPath);
  try {
    if (rootless.length > 0) parts.push({ runAs: o.user, part: runAsUser(rootless, o, stamp) });
    if (here.length > 0) parts.push({ runAs: os.userInfo().username, part: await runHere(here, o, stamp) });
  } finally {
    if (registryNeeded) stopBenchRegistry(REPO, process.execPath);
  }

  const byName = new Map(parts.flatMap((p) => p.part.scenarios.map((s) => [s.name, s] as const)));
  const results = selected.map((s) => byName.get(s.name)).filter((r) => r !== undefined);
  const record = {
    schema: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    argv: process.argv.slice(2),
    git: gitState(REPO),
    machine: parts[0]?.part.machine ?? null,
    // Who ran which scenarios, in what environment (one entry per process).
    runs: parts.map((p) => ({
      runAs: p.runAs,
      user: p.part.machine.user,
      env: p.part.machine.env,
      scenarios: p.part.scenarios.map((s) => s.name),
    })),
    scenarios: results,
  };
  const file = writeRecord(record, stamp);

  console.log('summary:');
  for (const r of results) {
    const ratio = r.verdict ? ` hutch/peer ${r.verdict.ratioPeer.toFixed(2)}x` : '';
    const floor =
      r.verdict?.ratioFloor !== undefined ? ` hutch/floor ${r.verdict.ratioFloor.toFixed(2)}x` : '';
    console.log(`  ${r.name.padEnd(16)} ${r.status.padEnd(5)}${ratio}${floor}`);
  }
  const missing = selected.filter((s) => !byName.has(s.name)).map((s) => s.name);
  if (missing.length > 0) console.log(`  no result for: ${missing.join(', ')}`);
  console.log(`bench: wrote ${file}`);
  const errors = results.some((r) => r.status === 'ERROR') || missing.length > 0;
  const misses = results.some((r) => r.status === 'MISS');
  await nextTurn();
  if (interrupted) return 130;
  return errors || (o.strict && misses) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError) {
      console.error(`bench: ${e.message}`);
      process.exit(2);
    }
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
