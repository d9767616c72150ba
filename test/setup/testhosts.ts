/**
 * Test hosts for the networking tests: each is a network namespace made by
 * root, joined to the host by a veth pair with private addresses, running a
 * small agent (testhost-agent.ts) that makes TCP connections from inside it
 * on request. A rootless test asks an agent over HTTP to reach a port that
 * hutch published, and sees which client address the container saw.
 *
 *   node test/setup/testhosts.ts --state DIR          start (replaces old ones)
 *   node test/setup/testhosts.ts --state DIR --stop   stop
 *
 * The description ({name, address, hostAddress, agent}[]) is written to
 * DIR/testhosts.json for HUTCH_TEST_HOSTS. Only processes started here are
 * ended, by the pid recorded at start.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TestHost {
  name: string;
  /** The test host's own address. */
  address: string;
  /** The host's address on the link to it (where published ports are reached). */
  hostAddress: string;
  /** The agent's base URL. */
  agent: string;
}

interface Saved {
  hosts: TestHost[];
  pids: number[];
}

const AGENT_PORT = 7070;
const here = dirname(fileURLToPath(import.meta.url));

function ip(args: string[], allowFail = false): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

function stop(state: string): void {
  const file = join(state, 'testhosts.json');
  let saved: Saved | undefined;
  try {
    saved = JSON.parse(readFileSync(file, 'utf8')) as Saved;
  } catch {
    saved = undefined;
  }
  for (const pid of saved?.pids ?? []) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const h of saved?.hosts ?? []) ip(['netns', 'delete', h.name], true);
  rmSync(file, { force: true });
}

async function waitForAgent(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/ping`);
      if (r.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`the test host agent at ${url} did not answer`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function start(state: string): Promise<void> {
  mkdirSync(state, { recursive: true });
  stop(state);
  const saved: Saved = { hosts: [], pids: [] };
  for (const n of [1, 2]) {
    const name = `hutch-th${n}`;
    const hostAddress = `10.231.${n}.1`;
    const address = `10.231.${n}.2`;
    ip(['netns', 'delete', name], true);
    ip(['link', 'delete', `hth${n}-h`], true);
    ip(['netns', 'add', name]);
    ip(['link', 'add', `hth${n}-h`, 'type', 'veth', 'peer', 'name', `hth${n}-c`]);
    ip(['link', 'set', `hth${n}-c`, 'netns', name]);
    ip(['addr', 'add', `${hostAddress}/24`, 'dev', `hth${n}-h`]);
    ip(['link', 'set', `hth${n}-h`, 'up']);
    ip(['-n', name, 'addr', 'add', `${address}/24`, 'dev', `hth${n}-c`]);
    ip(['-n', name, 'link', 'set', `hth${n}-c`, 'up']);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
    ip(['-n', name, 'route', 'add', 'default', 'via', hostAddress]);
    const log = openSync(join(state, `${name}.log`), 'w');
    const agent = spawn(
      'ip',
      ['netns', 'exec', name, process.execPath, join(here, 'testhost-agent.ts'), address, String(AGENT_PORT)],
      { detached: true, stdio: ['ignore', log, log] },
    );
    agent.unref();
    if (agent.pid === undefined) throw new Error(`could not start the agent of ${name}`);
    saved.pids.push(agent.pid);
    const url = `http://${address}:${AGENT_PORT}`;
    saved.hosts.push({ name, address, hostAddress, agent: url });
    writeFileSync(join(state, 'testhosts.json'), JSON.stringify(saved));
    await waitForAgent(url);
  }
  writeFileSync(join(state, 'testhosts.json'), JSON.stringify(saved), { mode: 0o644 });
  console.log(`test hosts: ${saved.hosts.map((h) => `${h.name} ${h.address}`).join(', ')}`);
}

/** The test hosts started for this run, or undefined (with HUTCH_TEST_HOSTS unset or unreadable). */
export function testHosts(): TestHost[] | undefined {
  const file = process.env.HUTCH_TEST_HOSTS;
  if (!file) return undefined;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as Saved).hosts;
  } catch {
    return undefined;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const state = process.argv[process.argv.indexOf('--state') + 1];
  if (!state || !process.argv.includes('--state')) {
    console.error('usage: testhosts.ts --state DIR [--stop]');
    process.exit(2);
  }
  if (process.argv.includes('--stop')) stop(state);
  else await start(state);
}
