/**
 * Runs one scenario: setup, warm-up rounds, timed rounds, teardown.
 *
 * Each round runs every engine once; the order rotates from round to round
 * (hutch, peer, floor / peer, floor, hutch / ...) so that none always runs
 * first, with colder caches, or last, after the others' writeback. Each
 * command is timed wall-clock with process.hrtime around spawnSync; its
 * stdout goes to /dev/null unless the command captures it, its stderr is kept
 * only to explain a failure. A command that exits non-zero fails the
 * scenario, and the harness goes on with the next one.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { makeContext, stopPauseProcesses, type EngineSetup } from './engines.ts';
import { judge, renderScenario, summarize, UNIT, type Summary, type Verdict } from './stats.ts';
import type { EngineName, Metric, ResolvedCmd, Sample, Scenario, ScenarioContext } from './types.ts';

export interface ScenarioResult {
  name: string;
  status: 'PASS' | 'MISS' | '-' | 'ERROR';
  metric: Metric;
  unit: string;
  rounds: number;
  warmup: number;
  target: Scenario['target'] | null;
  /** The command lines as run, with the variables the harness set. */
  commands: Partial<Record<EngineName, string>>;
  /** Engine order of each timed round. */
  order: EngineName[][];
  samples: Partial<Record<EngineName, number[]>>;
  summaries: Partial<Record<EngineName, Summary>>;
  verdict: Verdict | null;
  error: string | null;
  startedAt: string;
  durationMs: number;
}

export class CommandFailed extends Error {}

const LABELS: Record<EngineName, string> = { hutch: 'hutch', peer: 'podman', floor: 'floor' };
const TIME = '/usr/bin/time';

function describe(engine: EngineName, r: ResolvedCmd): string {
  const vars =
    engine === 'hutch' ? `HUTCH_ROOT=${r.env.HUTCH_ROOT} HUTCH_RUNROOT=${r.env.HUTCH_RUNROOT} ` : '';
  return `${vars}${[r.file, ...r.args].join(' ')}`;
}

function runTimed(engine: EngineName, r: ResolvedCmd, metric: Metric, scratch: string): Sample {
  let file = r.file;
  let args = r.args;
  const rssFile = join(scratch, 'maxrss');
  if (metric === 'rss') {
    // GNU time reports the peak RSS of the command it waits for.
    file = TIME;
    args = ['-f', '%M', '-o', rssFile, '--', r.file, ...r.args];
  }
  const t0 = process.hrtime.bigint();
  const res = spawnSync(file, args, {
    env: r.env,
    cwd: r.cwd,
    input: r.input,
    stdio: [r.input === undefined ? 'ignore' : 'pipe', r.capture ? 'pipe' : 'ignore', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const line = describe(engine, r);
  if (res.error) throw new CommandFailed(`${LABELS[engine]}: cannot run ${line}: ${res.error.message}`);
  if (res.status !== 0) {
    const how = res.status === null ? `was killed by ${res.signal}` : `exited ${res.status}`;
    const err = (res.stderr ?? '').trim();
    throw new CommandFailed(
      `${LABELS[engine]}: \`${line}\` ${how}${err ? `; its stderr:\n${indent(err)}` : ' (no stderr)'}`,
    );
  }
  const sample: Sample = { engine, ms, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
  if (metric === 'rss') sample.maxRssKb = Number.parseInt(readFileSync(rssFile, 'utf8').trim(), 10);
  return sample;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

function valueOf(scenario: Scenario, metric: Metric, sample: Sample): number {
  if (scenario.measure) return scenario.measure(sample);
  if (metric === 'time') return sample.ms;
  if (metric === 'rss') return (sample.maxRssKb ?? NaN) / 1024;
  throw new Error(`scenario ${scenario.name}: metric ${metric} needs a measure() function`);
}

function orderOf(engines: EngineName[], round: number): EngineName[] {
  const k = round % engines.length;
  return [...engines.slice(k), ...engines.slice(0, k)];
}

export async function runScenario(
  scenario: Scenario,
  setup: EngineSetup,
  dirs: { dir: string; runDir: string },
  opts: { rounds?: number; log: (line: string) => void; stop?: () => boolean },
): Promise<ScenarioResult> {
  const metric = scenario.target?.metric ?? 'time';
  const rounds = opts.rounds ?? scenario.rounds;
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  const engines: EngineName[] = scenario.floor ? ['hutch', 'peer', 'floor'] : ['hutch', 'peer'];
  const result: ScenarioResult = {
    name: scenario.name,
    status: 'ERROR',
    metric,
    unit: UNIT[metric],
    rounds,
    warmup: scenario.warmup,
    target: scenario.target ?? null,
    commands: {},
    order: [],
    samples: {},
    summaries: {},
    verdict: null,
    error: null,
    startedAt,
    durationMs: 0,
  };
  const ctx: ScenarioContext = makeContext(setup, dirs.dir, dirs.runDir);
  const scratch = join(dirs.runDir, 'scratch');
  mkdirSync(scratch, { recursive: true });
  const cmds: Partial<Record<EngineName, ResolvedCmd>> = {};

  const once = async (engine: EngineName): Promise<Sample> => {
    const cmd = cmds[engine];
    if (!cmd) throw new Error(`scenario ${scenario.name} has no ${engine} command`);
    // spawnSync blocks the event loop: let a pending Ctrl-C be noticed here, untimed.
    await nextTurn();
    if (opts.stop?.()) throw new Error('interrupted');
    if (scenario.settle) {
      spawnSync('sync', { stdio: 'ignore' });
      await sleep(scenario.settle.syncAndIdleMs);
    }
    await scenario.before_each?.(ctx, engine);
    return runTimed(engine, cmd, metric, scratch);
  };

  opts.log(
    `-- ${scenario.name}: ${scenario.warmup} warm-up, ${rounds} timed rounds of ${engines.join(', ')}`,
  );
  try {
    await scenario.setup?.(ctx);
    for (const engine of engines) {
      const cmd = engine === 'hutch' ? scenario.hutch : engine === 'peer' ? scenario.peer : scenario.floor;
      if (cmd === undefined) continue;
      const resolved = ctx.resolve(cmd);
      cmds[engine] = resolved;
      result.commands[engine] = describe(engine, resolved);
    }
    for (let w = 0; w < scenario.warmup; w++) {
      for (const engine of orderOf(engines, w)) await once(engine);
    }
    const values: Partial<Record<EngineName, number[]>> = {};
    for (let r = 0; r < rounds; r++) {
      const order = orderOf(engines, r);
      result.order.push(order);
      for (const engine of order) {
        const sample = await once(engine);
        (values[engine] ??= []).push(valueOf(scenario, metric, sample));
      }
    }
    result.samples = values;
    const medians: Partial<Record<EngineName, number>> = {};
    for (const engine of engines) {
      const s = summarize(values[engine] ?? []);
      result.summaries[engine] = s;
      medians[engine] = s.median;
    }
    result.verdict = judge(medians, scenario.target);
    result.status = result.verdict.status;
    opts.log(
      renderScenario(
        scenario.name,
        metric,
        result.summaries,
        { ...LABELS, ...scenario.labels },
        result.verdict,
      ),
    );
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
    opts.log(`== ${scenario.name}: FAILED\n${result.error}`);
  } finally {
    try {
      await scenario.teardown?.(ctx);
    } catch (e) {
      const msg = `teardown failed: ${e instanceof Error ? e.message : String(e)}`;
      result.error = result.error ? `${result.error}\n${msg}` : msg;
      result.status = 'ERROR';
      opts.log(`== ${scenario.name}: ${msg}`);
    }
    stopPauseProcesses(ctx);
    rmSync(scratch, { recursive: true, force: true });
    result.durationMs = Date.now() - t0;
  }
  return result;
}
