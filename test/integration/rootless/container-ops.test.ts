/**
 * The commands that work on a running container, as the unprivileged user:
 * top, stats, pause/unpause, port, attach and update, on the host's default
 * runtime and the busybox image of the test registry. Rootless containers
 * here have no cgroup of their own, so pause and memory limits are refused
 * with a clear error; where the host delegates a freezer they must work, and
 * the tests accept either outcome as long as the state matches it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sandbox } from '../../support/hutch.ts';
import type { Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

async function until(what: string, pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('container operations (rootless)', { skip: NEEDS_REGISTRY }, () => {
  let box: Sandbox;
  const img = (): string => `${REGISTRY}/busybox:latest`;
  const h = (args: string[]) => box.hutch(args);
  const status = (name: string): string =>
    h(['inspect', '--format', '{{.State.Status}}', name]).stdout.trim();

  before(() => {
    box = sandbox();
    const r = h(['pull', '-q', img()]);
    assert.equal(r.status, 0, r.stderr);
    const s = h(['run', '-d', '--name', 'sleeper', img(), 'sleep', '100']);
    assert.equal(s.status, 0, s.stderr);
  });
  after(() => box.cleanup());

  it("top lists the container's processes in docker's ps -ef columns", () => {
    const r = h(['top', 'sleeper']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
    assert.equal(lines.length, 2, r.stdout);
    assert.match(lines[1]!, /^root\s+\d+\s+\d+\s+\d+\s+\S+\s+\?\s+\d\d:\d\d:\d\d\s+sleep 100$/);
  });

  it("top with ps options runs ps and keeps the container's rows", () => {
    const r = h(['top', 'sleeper', '-o', 'pid,comm']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^PID\s+COMMAND$/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s+/)[1]),
      ['sleep'],
    );
    const bad = h(['top', 'sleeper', '-o', 'comm']);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /PID field/);
  });

  it('top of a stopped container is refused', () => {
    assert.equal(h(['create', '--name', 'idle', img(), 'true']).status, 0);
    const r = h(['top', 'idle']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /idle is not running/);
    assert.equal(h(['rm', 'idle']).status, 0);
  });

  it('stats --no-stream shows the container with its memory and processes', () => {
    const r = h(['stats', '--no-stream']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(
      lines[0]!,
      /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/,
    );
    const row = lines.find((l) => /\ssleeper\s/.test(l));
    assert.ok(row, r.stdout);
    const m =
      /^[0-9a-f]{12}\s+sleeper\s+(\d+\.\d\d)%\s+(\S+) \/ (\S+)\s+\d+\.\d\d%\s+\S+ \/ \S+\s+\S+ \/ \S+\s+(\d+)$/.exec(
        row,
      );
    assert.ok(m, row);
    assert.match(m[2]!, /^\d+(\.\d+)?(B|KiB|MiB)$/);
    assert.notEqual(m[2], '0B', 'the processes use some memory');
    assert.match(m[3]!, /^\d+(\.\d+)?(MiB|GiB|TiB)$/);
    assert.ok(Number(m[4]) >= 1, row);
  });

  it('stats --format templates the fields', () => {
    const r = h(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'sleeper']);
    assert.equal(r.status, 0, r.stderr);
    const [name, pids] = r.stdout.trim().split(' ');
    assert.equal(name, 'sleeper');
    assert.ok(Number(pids) >= 1, r.stdout);
    const j = h(['stats', '--no-stream', '--format', 'json', 'sleeper']);
    assert.equal(j.status, 0, j.stderr);
    const obj = JSON.parse(j.stdout) as Record<string, string>;
    assert.equal(obj.Name, 'sleeper');
    assert.deepEqual(Object.keys(obj).sort(), [
      'BlockIO',
      'CPUPerc',
      'Container',
      'ID',
      'MemPerc',
      'MemUsage',
      'Name',
      'NetIO',
      'PIDs',
    ]);
  });

  it('pause freezes the container where a freezer is delegated, else says what it needs', () => {
    const r = h(['pause', 'sleeper']);
    if (r.status === 0) {
      assert.equal(r.stdout.trim(), 'sleeper');
      assert.equal(status('sleeper'), 'paused');
      const u = h(['unpause', 'sleeper']);
      assert.equal(u.status, 0, u.stderr);
    } else {
      assert.equal(r.status, 125);
      assert.match(r.stderr, /rootless pause needs a cgroup v2 freezer/);
      assert.match(r.stderr, /hutch doctor/);
    }
    assert.equal(status('sleeper'), 'running');
    const u = h(['unpause', 'sleeper']);
    assert.equal(u.status, 125);
    assert.match(u.stderr, /is not paused/);
  });

  it('port prints nothing for a container without published ports, and errors for a private port', () => {
    let r = h(['port', 'sleeper']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    r = h(['port', 'sleeper', '80/tcp']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^Error: No public port '80\/tcp' published for sleeper$/m);
    r = h(['port', 'sleeper', '80']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /'80\/tcp'/);
    assert.equal(h(['port', 'no-such-container']).status, 125);
  });

  it("attach streams the output and returns the container's exit code", () => {
    let r = h([
      'run',
      '-d',
      '--name',
      'talker',
      img(),
      'sh',
      '-c',
      'i=0; while [ $i -lt 15 ]; do i=$((i+1)); echo line $i; sleep 0.2; done; exit 3',
    ]);
    assert.equal(r.status, 0, r.stderr);
    r = h(['attach', 'talker']);
    assert.equal(r.status, 3, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.ok(lines.length >= 3, r.stdout);
    assert.equal(lines[lines.length - 1], 'line 15');
    r = h(['attach', 'talker']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /not running/);
    assert.equal(h(['rm', 'talker']).status, 0);
  });

  it('attach forwards stdin to a container run with -i, and detaches on the detach keys', async () => {
    let r = h([
      'run',
      '-d',
      '-i',
      '--name',
      'reader',
      img(),
      'sh',
      '-c',
      'while read l; do echo got $l; done',
    ]);
    assert.equal(r.status, 0, r.stderr);
    r = box.hutch(['attach', '--detach-keys', 'ctrl-x', 'reader'], { input: 'hello\n\x18' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /read escape sequence/);
    assert.equal(status('reader'), 'running');
    await until('the echo of the input', () => h(['logs', 'reader']).stdout === 'got hello\n');
    assert.equal(h(['rm', '-f', 'reader']).status, 0);
  });

  it('update --restart changes the restart policy', () => {
    let r = h(['update', '--restart', 'on-failure:3', 'sleeper']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'sleeper');
    assert.equal(
      h([
        'inspect',
        '--format',
        '{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}',
        'sleeper',
      ]).stdout.trim(),
      'on-failure 3',
    );
    r = h(['update', '--restart', 'sometimes', 'sleeper']);
    assert.equal(r.status, 125);
    r = h(['update', 'sleeper']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /one or more flags/);
  });

  it('update --memory is refused where rootless limits cannot be enforced', () => {
    const r = h(['update', '--memory', '64m', 'sleeper']);
    if (r.status === 0) {
      assert.equal(h(['inspect', '--format', '{{.HostConfig.Memory}}', 'sleeper']).stdout.trim(), '67108864');
      return;
    }
    assert.equal(r.status, 125);
    assert.match(r.stderr, /--memory/);
    assert.equal(h(['inspect', '--format', '{{.HostConfig.Memory}}', 'sleeper']).stdout.trim(), '0');
  });

  it('leaves a consistent store behind', () => {
    assert.equal(h(['rm', '-f', 'sleeper']).status, 0);
    assert.equal(h(['ps', '-aq']).stdout.trim(), '');
    assert.deepEqual(box.problems(), []);
  });
});
