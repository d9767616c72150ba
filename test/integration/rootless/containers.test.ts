/**
 * Containers end to end as the unprivileged user, on the real crun (and
 * runc) and conmon, from the busybox image of the test registry: the
 * ownership seed scenarios, the lifecycle as docker users know it, exit
 * codes, the terminal, restart policies and security flags checked from
 * inside the container.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseSubIdFile, rangesFor } from '../../../src/rootless/subid.ts';
import { HUTCH, killAndWait, sandbox } from '../../support/hutch.ts';
import type { Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const userName = (): string => process.env.USER ?? 'hutchtest';

function subUidStart(): number {
  const ranges = rangesFor(parseSubIdFile(readFileSync('/etc/subuid', 'utf8'), '/etc/subuid'), {
    name: userName(),
    id: process.getuid!(),
  });
  return ranges[0]!.start;
}

async function until(what: string, pred: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const runtime of ['crun', 'runc']) {
  describe(`containers on ${runtime}`, { skip: NEEDS_REGISTRY }, () => {
    let box: Sandbox;
    const img = (): string => `${REGISTRY}/busybox:latest`;
    const h = (args: string[], input?: string) =>
      box.hutch(['--runtime', runtime, ...args], input === undefined ? {} : { input });
    before(() => {
      box = sandbox();
      const r = box.hutch(['pull', '-q', img()]);
      assert.equal(r.status, 0, r.stderr);
    });
    after(() => {
      // The bind-mount directories hold files of sub-ids: only root in the namespace may remove them.
      box.hutch([
        'unshare',
        'rm',
        '-rf',
        join(box.dir, `bind-${runtime}`),
        join(box.dir, `owned-${runtime}`),
      ]);
      box.cleanup();
    });

    it('runs as root inside: `run --rm busybox id` shows uid 0, and leaves no container', () => {
      const r = h(['run', '--rm', img(), 'id']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^uid=0\(root\) gid=0\(root\)/);
      assert.equal(h(['ps', '-aq']).stdout.trim(), '');
    });

    it("cannot read the host's /etc/shadow through a bind mount of /", () => {
      const r = h(['run', '-v', '/:/rootdir', '--rm', img(), 'cat', '/rootdir/etc/shadow']);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /Permission denied/);
    });

    it('maps container root to the user, and container uid 1000 to sub-id start + 999, in a bind mount', () => {
      const dir = join(box.dir, `bind-${runtime}`);
      mkdirSync(dir);
      chmodSync(dir, 0o777);
      let r = h(['run', '--rm', '-v', `${dir}:/data`, img(), 'touch', '/data/by-root']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(statSync(join(dir, 'by-root')).uid, process.getuid!());
      r = h(['run', '--rm', '-u', '1000', '-v', `${dir}:/data`, img(), 'touch', '/data/by-1000']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(statSync(join(dir, 'by-1000')).uid, subUidStart() + 999);
    });

    it('with :U, container uid 1000 can write a directory of the user without sudo', () => {
      const dir = join(box.dir, `owned-${runtime}`);
      mkdirSync(dir, { mode: 0o755 });
      writeFileSync(join(dir, 'old'), 'x');
      let r = h(['run', '--rm', '-u', '1000', '-v', `${dir}:/data`, img(), 'touch', '/data/new']);
      assert.notEqual(r.status, 0, 'without :U the write must fail');
      r = h([
        'run',
        '--rm',
        '-u',
        '1000:1000',
        '-v',
        `${dir}:/data:U`,
        img(),
        'sh',
        '-c',
        'touch /data/new && ls -n /data',
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(statSync(join(dir, 'new')).uid, subUidStart() + 999);
      assert.equal(statSync(join(dir, 'old')).uid, subUidStart() + 999);
    });

    it('runs detached: ps, logs, exec, stop, start, restart, rm -f as docker does', async () => {
      let r = h([
        'run',
        '-d',
        '--name',
        `svc-${runtime}`,
        img(),
        'sh',
        '-c',
        'echo started; trap "echo bye; exit 0" TERM; while :; do sleep 0.1; done',
      ]);
      assert.equal(r.status, 0, r.stderr);
      const id = r.stdout.trim();
      assert.match(id, /^[0-9a-f]{64}$/);
      const ps = h(['ps']);
      assert.match(ps.stdout, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES/);
      assert.match(ps.stdout, new RegExp(`${id.slice(0, 12)}.*Up .*svc-${runtime}`));
      await until('the first log line', () => h(['logs', `svc-${runtime}`]).stdout.includes('started'));
      r = h(['exec', `svc-${runtime}`, 'sh', '-c', 'echo $((6*7)); exit 3']);
      assert.equal(r.stdout.trim(), '42');
      assert.equal(r.status, 3);
      r = h(['stop', `svc-${runtime}`]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), `svc-${runtime}`);
      assert.match(
        h(['ps', '-a', '--format', '{{.Names}} {{.Status}}']).stdout,
        new RegExp(`svc-${runtime} Exited \\(0\\)`),
      );
      assert.match(h(['logs', `svc-${runtime}`]).stdout, /started\nbye\n/);
      assert.equal(h(['ps', '-q']).stdout.trim(), '');
      assert.equal(h(['start', `svc-${runtime}`]).status, 0);
      assert.equal(
        h(['inspect', '--format', '{{.State.Status}}', `svc-${runtime}`]).stdout.trim(),
        'running',
      );
      assert.equal(h(['restart', '-t', '1', `svc-${runtime}`]).status, 0);
      assert.equal(h(['inspect', '--format', '{{.State.Running}}', `svc-${runtime}`]).stdout.trim(), 'true');
      r = h(['rm', `svc-${runtime}`]);
      assert.equal(r.status, 125, 'rm of a running container without -f is refused');
      assert.match(r.stderr, /running/);
      r = h(['rm', '-f', `svc-${runtime}`]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(h(['ps', '-aq']).stdout.trim(), '');
      assert.deepEqual(box.problems(), []);
    });

    it('execs detached without leaving a zombie, passes the process stderr, and gives 127 for a missing command', async () => {
      const name = `ex-${runtime}`;
      assert.equal(h(['run', '-d', '--name', name, img(), 'sleep', '60']).status, 0);
      assert.equal(h(['exec', '-d', name, 'sleep', '0.2']).status, 0);
      await new Promise((r) => setTimeout(r, 1000));
      const procs = h(['exec', name, 'ps', '-o', 'stat,comm']).stdout;
      assert.doesNotMatch(procs, /^Z/m, procs);
      const ls = h(['exec', name, 'ls', '/nope']);
      assert.equal(ls.status, 1);
      assert.match(ls.stderr, /No such file or directory/);
      assert.equal(h(['exec', name, 'no-such-command']).status, 127);
      assert.equal(h(['rm', '-f', name]).status, 0);
    });

    it('follows logs until the container ends', () => {
      const r = h([
        'run',
        '-d',
        '--name',
        `talk-${runtime}`,
        img(),
        'sh',
        '-c',
        'for i in 1 2 3; do echo line $i; sleep 0.2; done',
      ]);
      assert.equal(r.status, 0, r.stderr);
      const f = h(['logs', '-f', `talk-${runtime}`]);
      assert.equal(f.status, 0, f.stderr);
      assert.equal(f.stdout, 'line 1\nline 2\nline 3\n');
      assert.equal(h(['logs', '--tail', '1', `talk-${runtime}`]).stdout, 'line 3\n');
      assert.match(
        h(['logs', '-t', `talk-${runtime}`]).stdout.split('\n')[0]!,
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line 1$/,
      );
      assert.equal(h(['wait', `talk-${runtime}`]).stdout.trim(), '0');
      assert.equal(h(['rm', `talk-${runtime}`]).status, 0);
    });

    it("gives docker's exit codes: 125 engine, 126 cannot invoke, 127 not found, else the container's", () => {
      assert.equal(h(['run', '--rm', '--no-such-flag', img(), 'true']).status, 125);
      assert.equal(h(['run', '--rm', '--pull', 'never', `${REGISTRY}/no-such-image:1`, 'true']).status, 125);
      let r = h(['run', '--rm', img(), '/etc/passwd']);
      assert.equal(r.status, 126, r.stderr);
      r = h(['run', '--rm', img(), 'no-such-command']);
      assert.equal(r.status, 127, r.stderr);
      assert.equal(h(['run', '--rm', img(), 'sh', '-c', 'exit 7']).status, 7);
      assert.equal(h(['ps', '-aq']).stdout.trim(), '', 'failed runs with --rm leave nothing');
    });

    it('passes stdin with -i and gives a working terminal with -t', () => {
      const r = h(['run', '--rm', '-i', img(), 'sh', '-c', 'read x; echo got $x'], 'hello\n');
      assert.equal(r.stdout, 'got hello\n');
      // A real pseudo-terminal around the CLI, from util-linux's script.
      const t = spawnSync(
        'script',
        ['-qec', `${HUTCH} --runtime ${runtime} run --rm -it ${img()} sh -c 'tty; exit 4'`, '/dev/null'],
        {
          env: box.env,
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
      assert.equal(t.status, 4, `${t.stdout}\n${t.stderr}`);
      assert.match(t.stdout, /\/dev\/pts\/\d+/);
    });

    it('restarts on failure three times, then stays exited', async () => {
      const r = h([
        'run',
        '-d',
        '--name',
        `flaky-${runtime}`,
        '--restart',
        'on-failure:3',
        img(),
        'sh',
        '-c',
        'echo try; exit 1',
      ]);
      assert.equal(r.status, 0, r.stderr);
      await until(
        'three restarts',
        () =>
          h([
            'inspect',
            '--format',
            '{{.RestartCount}} {{.State.Status}}',
            `flaky-${runtime}`,
          ]).stdout.trim() === '3 exited',
        30_000,
      );
      await new Promise((res) => setTimeout(res, 1500));
      assert.equal(
        h([
          'inspect',
          '--format',
          '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}',
          `flaky-${runtime}`,
        ]).stdout.trim(),
        '3 exited 1',
      );
      assert.equal(h(['logs', `flaky-${runtime}`]).stdout, 'try\ntry\ntry\ntry\n');
      assert.equal(h(['rm', `flaky-${runtime}`]).status, 0);
    });

    it('turns a container unhealthy in ps when its healthcheck fails, and healthy when it passes', async () => {
      const name = `hc-${runtime}`;
      const r = h([
        'run',
        '-d',
        '--name',
        name,
        '--health-cmd',
        'test -e /tmp/ok',
        '--health-interval',
        '1s',
        '--health-retries',
        '2',
        img(),
        'sleep',
        '60',
      ]);
      assert.equal(r.status, 0, r.stderr);
      await until(
        'unhealthy',
        () => /\(unhealthy\)/.test(h(['ps', '--filter', `name=${name}`]).stdout),
        20_000,
      );
      assert.match(
        h(['ps', '--filter', 'health=unhealthy', '--format', '{{.Names}}']).stdout,
        new RegExp(name),
      );
      assert.equal(h(['exec', name, 'touch', '/tmp/ok']).status, 0);
      await until('healthy', () => /\(healthy\)/.test(h(['ps', '--filter', `name=${name}`]).stdout), 20_000);
      const health = JSON.parse(h(['inspect', '--format', '{{json .State.Health}}', name]).stdout) as {
        Status: string;
        Log: { ExitCode: number }[];
      };
      assert.equal(health.Status, 'healthy');
      assert.equal(health.Log.at(-1)!.ExitCode, 0);
      assert.equal(h(['healthcheck', 'run', name]).status, 0);
      assert.equal(h(['rm', '-f', name]).status, 0);
    });

    it('applies --read-only with --tmpfs, --cap-drop ALL and no-new-privileges inside', () => {
      let r = h([
        'run',
        '--rm',
        '--read-only',
        '--tmpfs',
        '/tmp',
        img(),
        'sh',
        '-c',
        'touch /tmp/ok && echo tmp-ok; touch /nope 2>&1; true',
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /tmp-ok/);
      assert.match(r.stdout, /Read-only file system/);
      r = h(['run', '--rm', '--cap-drop', 'ALL', img(), 'grep', 'CapEff', '/proc/self/status']);
      assert.match(r.stdout, /CapEff:\s+0000000000000000/);
      r = h(['run', '--rm', img(), 'grep', 'CapEff', '/proc/self/status']);
      assert.doesNotMatch(r.stdout, /CapEff:\s+0000000000000000/, 'the default set is not empty');
      r = h([
        'run',
        '--rm',
        '--security-opt',
        'no-new-privileges',
        img(),
        'grep',
        'NoNewPrivs',
        '/proc/self/status',
      ]);
      assert.match(r.stdout, /NoNewPrivs:\s+1/);
      r = h(['run', '--rm', img(), 'grep', 'Seccomp:', '/proc/self/status']);
      assert.match(r.stdout, /Seccomp:\s+2/, 'the default seccomp filter is on');
    });

    it("gives a --privileged container all capabilities and the host's devices", () => {
      const r = h([
        'run',
        '--rm',
        '--privileged',
        img(),
        'sh',
        '-c',
        'grep CapEff /proc/self/status; ls /dev/fuse /dev/net/tun',
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(
        r.stdout,
        /CapEff:\s+000001ffffffffff|CapEff:\s+000000ffffffffff|CapEff:\s+0000003fffffffff/,
      );
      assert.match(r.stdout, /\/dev\/fuse\n\/dev\/net\/tun/);
      const plain = h(['run', '--rm', img(), 'ls', '/dev/fuse']);
      assert.notEqual(plain.status, 0, 'without --privileged the host devices stay out');
    });

    it('refuses a memory limit it cannot enforce rootless here, saying why', () => {
      const r = h(['run', '--rm', '--memory', '64m', img(), 'cat', '/sys/fs/cgroup/memory.max']);
      // Where the user's cgroup v2 controllers are delegated the limit applies (seen in the container's
      // own cgroup); elsewhere a clear refusal.
      if (r.status === 0) {
        assert.equal(r.stdout.trim(), '67108864');
        return;
      }
      assert.equal(r.status, 125);
      assert.match(r.stderr, /--memory/);
      assert.match(r.stderr, /hutch doctor|hutch setup/);
    });

    it('rejoins the namespace of running containers when the pause process has died', () => {
      const name = `keeper-${runtime}`;
      assert.equal(h(['run', '-d', '--name', name, img(), 'sleep', '300']).status, 0);
      const before = box.pausePid()!;
      const mntBefore = readlinkSync(`/proc/${before}/ns/mnt`);
      killAndWait(before);
      assert.equal(h(['exec', name, 'echo', 'reachable']).stdout, 'reachable\n');
      const after = box.pausePid()!;
      assert.notEqual(after, before);
      assert.equal(
        readlinkSync(`/proc/${after}/ns/mnt`),
        mntBefore,
        'the same mount namespace, not a new one',
      );
      assert.equal(h(['rm', '-f', name]).status, 0);
      assert.deepEqual(box.problems(), []);
    });

    it('rotates the log at --log-opt max-size, keeping the newest lines', async () => {
      const name = `chatty-${runtime}`;
      const r = h([
        'run',
        '-d',
        '--name',
        name,
        '--log-opt',
        'max-size=2k',
        img(),
        'sh',
        '-c',
        'i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done',
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(h(['wait', name]).stdout.trim(), '0');
      const logPath = h(['inspect', '--format', '{{.LogPath}}', name]).stdout.trim();
      assert.ok(statSync(logPath).size <= 2048 + 200, `the log file is ${statSync(logPath).size} bytes`);
      const lines = h(['logs', name]).stdout.trim().split('\n');
      assert.ok(lines.length > 0 && lines.length < 300, `${lines.length} lines kept`);
      assert.equal(lines.at(-1), 'line-299');
      assert.equal(h(['rm', name]).status, 0);
    });

    it('keeps named volumes across containers and fills a new one from the image', () => {
      let r = h([
        'run',
        '--rm',
        '-v',
        `data-${runtime}:/etc`,
        img(),
        'sh',
        '-c',
        'ls /etc/passwd && echo kept > /etc/note',
      ]);
      assert.equal(r.status, 0, r.stderr);
      r = h(['run', '--rm', '-v', `data-${runtime}:/v`, img(), 'cat', '/v/note']);
      assert.equal(r.stdout, 'kept\n');
      assert.match(h(['volume', 'ls', '-q']).stdout, new RegExp(`data-${runtime}`));
      assert.equal(h(['volume', 'rm', `data-${runtime}`]).status, 0);
    });
  });
}
