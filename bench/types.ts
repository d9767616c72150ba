/**
 * The shapes a benchmark scenario is written in. A scenario times one thing
 * done by hutch, by the peer engine (podman) and, optionally, by a floor: the
 * least any engine could do for it (e.g. starting Node at all).
 *
 * See bench/README.md for how to add one.
 */

/** The engine (or floor) a command belongs to, in the order of the tables. */
export type EngineName = 'hutch' | 'peer' | 'floor';

/**
 * One command to time. `argv[0]` is resolved by the harness when it is one of
 * these words, so that each engine runs against its own isolated store:
 *
 * - `hutch`: the launcher bin/hutch (or --hutch PATH), with HUTCH_ROOT and
 *   HUTCH_RUNROOT pointing into the scenario's bench directory;
 * - `podman`: /usr/bin/podman with `--root`, `--runroot` and `--tmpdir`
 *   inserted before the other arguments (the tmpdir holds podman's pause.pid);
 * - `node`: the Node binary hutch itself runs on (node_modules/node/bin/node).
 *
 * Anything else is run as is, found on PATH.
 */
export interface CmdSpec {
  argv: string[];
  /** Added to (and overriding) the harness's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Keep stdout (for `measure`, or for checks in hooks); otherwise it goes to /dev/null. */
  capture?: boolean;
  /** Written to the command's stdin. */
  input?: string;
}

/** A command, or a function building it from the scenario's context (its directories). */
export type Cmd = CmdSpec | string[] | ((ctx: ScenarioContext) => CmdSpec | string[]);

export type Metric = 'time' | 'throughput' | 'rss';

export interface Target {
  /** Which number the ratios compare: wall time (ms), throughput (Gbit/s) or peak RSS (MB). */
  metric: Metric;
  /** hutch / peer must be at most this (lower is better: time, rss). */
  ratioMax?: number;
  /** hutch / peer must be at least this (higher is better: throughput). */
  ratioMin?: number;
  /** hutch / floor must be at most this. */
  vsFloorMax?: number;
}

/** What one timed command produced, handed to `measure`. */
export interface Sample {
  engine: EngineName;
  /** Wall-clock milliseconds around the spawn. */
  ms: number;
  stdout: string;
  stderr: string;
  /** Peak resident set of the command in kB (from /usr/bin/time), only when the metric is 'rss'. */
  maxRssKb?: number;
}

export interface ScenarioContext {
  /** The repository (where bin/hutch lives). */
  repo: string;
  /** A scratch directory of this scenario, removed at the end of the run. */
  dir: string;
  /** Each engine's store, as the harness hands it to the engine. */
  hutchRoot: string;
  hutchRunroot: string;
  podmanRoot: string;
  podmanRunroot: string;
  podmanTmpdir: string;
  /** Turns a Cmd into what would be spawned (resolving hutch/podman/node). */
  resolve(cmd: Cmd): ResolvedCmd;
  /** Runs a command untimed (for setup and hooks); throws with its stderr when it fails. */
  run(cmd: Cmd): { stdout: string; stderr: string };
}

export interface ResolvedCmd {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  capture: boolean;
  input: string | undefined;
}

export type Hook = (ctx: ScenarioContext) => void | Promise<void>;

export interface Scenario {
  /** Unique, used by --scenario. */
  name: string;
  /** One line for --list. */
  description?: string;
  /** Timed rounds (overridden by --rounds). */
  rounds: number;
  /** Untimed rounds first, to warm caches and start pause processes. */
  warmup: number;
  /** Once, before the warm-up. */
  setup?: Hook;
  /** Once, after the last round (also after a failure). */
  teardown?: Hook;
  /** Before every command, timed or warm-up, untimed. Receives which engine is next. */
  before_each?: (ctx: ScenarioContext, engine: EngineName) => void | Promise<void>;
  hutch: Cmd;
  peer: Cmd;
  floor?: Cmd;
  target?: Target;
  /** Before each command: sync(1), then wait this long, so that one engine's writeback does not bill the next. */
  settle?: { syncAndIdleMs: number };
  /**
   * The number a sample stands for when the metric is not time: e.g. Gbit/s
   * parsed from stdout (set `capture` on the commands), or MB of RSS. By
   * default 'rss' reports the command's own peak RSS in MB.
   */
  measure?: (sample: Sample) => number;
  /** Run as the invoking user (root) instead of the unprivileged test user. */
  rootful?: boolean;
  /** Names for the table's rows where the peer is not podman (e.g. hutch itself on a small image). */
  labels?: Partial<Record<EngineName, string>>;
  /**
   * Needs the loopback registry with the test images (bench/oci-registry.ts),
   * which the harness starts (as root) before any scenario runs; its address
   * is in HUTCH_BENCH_REGISTRY (see benchRegistry()).
   */
  registry?: boolean;
}
