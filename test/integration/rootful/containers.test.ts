/**
 * Containers as root: no user namespace, and a cgroup per container
 * (cgroupsPath /hutch/ID), so limits are enforced by the kernel, can be
 * changed while the container runs, and are what stats reports. Checked
 * from the host side, in the cgroup files themselves, on cgroup v1 and v2.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sandbox } from '../../support/hutch.ts';
import type { Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const skip = process.getuid!() !== 0 ? 'runs as root only' : NEEDS_REGISTRY;

/** The memory limit of a process's cgroup, read where the kernel keeps it (v1 or v2). */
function memoryLimit(pid: number): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  if (v1 && existsSync('/sys/fs/cgroup/memory')) {
    const path = v1.slice(v1.indexOf(':', v1.indexOf(':') + 1) + 1);
    return readFileSync(join('/sys/fs/cgroup/memory', path, 'memory.limit_in_bytes'), 'utf8').trim();
  }
  const v2 = lines.find((l) => l.startsWith('0::'))!.slice(3);
  return readFileSync(join('/sys/fs/cgroup', v2, 'memory.max'), 'utf8').trim();
}

for (const runtime of ['crun', 'runc'])
  describe(`containers as root on ${runtime}`, { skip }, () => {
    let box: Sandbox;
    const img = (): string => `${REGISTRY}/busybox:latest`;
    const h = (args: string[]) => box.hutch(['--runtime', runtime, ...args]);
    const pidOf = (name: string): number =>
      Number(h(['inspect', '--format', '{{.State.Pid}}', name]).stdout.trim());

    before(() => {
      box = sandbox();
      const r = h(['pull', '-q', img()]);
      assert.equal(r.status, 0, r.stderr);
    });
    after(() => {
      h(['rm', '-f', 'limited']);
      box.cleanup();
    });

    it('runs `run --rm busybox id` as root, with no pause process', () => {
      const r = h(['run', '--rm', img(), 'id']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^uid=0\(root\) gid=0\(root\)/);
      assert.equal(box.pausePid(), undefined);
      assert.equal(h(['ps', '-aq']).stdout.trim(), '');
    });

    it('enforces --memory in the cgroup: the limit is set, and a process that needs more is killed', () => {
      let r = h(['run', '-d', '--name', 'limited', '--memory', '64m', img(), 'sleep', '300']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(memoryLimit(pidOf('limited')), '67108864');
      // dd's 200 MB buffer is touched as it is filled: the kernel's OOM killer ends it.
      r = h([
        'run',
        '--rm',
        '--memory',
        '64m',
        img(),
        'dd',
        'if=/dev/zero',
        'of=/dev/null',
        'bs=200M',
        'count=1',
      ]);
      assert.equal(r.status, 137, r.stderr);
    });

    it('update --memory changes the limit of the running container, and stats reports it', () => {
      const r = h(['update', '--memory', '128m', 'limited']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'limited');
      assert.equal(memoryLimit(pidOf('limited')), '134217728');
      assert.equal(
        h(['inspect', '--format', '{{.HostConfig.Memory}}', 'limited']).stdout.trim(),
        '134217728',
      );
      const s = h(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}} {{.PIDs}}', 'limited']);
      assert.equal(s.status, 0, s.stderr);
      assert.match(s.stdout.trim(), /^limited \d+(\.\d+)?(B|KiB|MiB) \/ 128MiB 1$/);
    });

    it('pauses and unpauses through the freezer', () => {
      let r = h(['pause', 'limited']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(h(['inspect', '--format', '{{.State.Status}}', 'limited']).stdout.trim(), 'paused');
      assert.match(h(['ps', '--format', '{{.Names}} {{.State}}']).stdout, /^limited paused$/m);
      r = h(['unpause', 'limited']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(h(['inspect', '--format', '{{.State.Status}}', 'limited']).stdout.trim(), 'running');
    });

    it('top lists the processes of the container', () => {
      const r = h(['top', 'limited']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(
        r.stdout.trimEnd(),
        /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD\nroot\s+\d+\s.*sleep 300$/,
      );
    });
  });
