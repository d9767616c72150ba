/**
 * `hutch start --all --filter restart-policy=...`, the command setup's boot
 * services run, on real containers (as root, from an image imported from
 * this host's static busybox, so no registry is needed): docker's rules at
 * daemon start, where a power loss is a container whose conmon and process
 * were killed outright.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sandbox } from '../../support/hutch.ts';
import type { Sandbox } from '../../support/hutch.ts';

const BUSYBOX = '/bin/busybox';
const skip =
  process.getuid!() !== 0 ? 'runs as root only' : existsSync(BUSYBOX) ? false : `needs a static ${BUSYBOX}`;

describe('start --all with restart-policy filters', { skip }, () => {
  let box: Sandbox;
  const h = (args: string[]) => box.hutch(args);
  const status = (): string =>
    h(['ps', '-a', '--format', '{{.Names}} {{.State}}']).stdout.trim().split('\n').sort().join('\n');

  before(() => {
    box = sandbox();
    const rootfs = join(box.dir, 'rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
    for (const applet of ['sh', 'sleep']) symlinkSync('busybox', join(rootfs, 'bin', applet));
    const tar = spawnSync('tar', ['-C', rootfs, '-cf', join(box.dir, 'rootfs.tar'), '.']);
    assert.equal(tar.status, 0, String(tar.stderr));
    const r = h(['import', join(box.dir, 'rootfs.tar'), 'bb:1']);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => {
    h(['rm', '-f', 'always', 'unless', 'never', 'crashed']);
    box.cleanup();
  });

  it('brings back always containers and unless-stopped ones the user did not stop', () => {
    for (const [name, policy] of [
      ['always', 'always'],
      ['unless', 'unless-stopped'],
      ['never', 'no'],
      ['crashed', 'unless-stopped'],
    ]) {
      const r = h(['run', '-d', '--name', name!, '--restart', policy!, 'bb:1', 'sleep', '300']);
      assert.equal(r.status, 0, r.stderr);
    }
    assert.equal(h(['stop', '-t', '0', 'always', 'unless', 'never']).status, 0);
    // A power loss: conmon and the container killed outright, so nothing records a stop.
    const pid = Number(h(['inspect', '--format', '{{.State.Pid}}', 'crashed']).stdout.trim());
    const conmon = Number(
      spawnSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim(),
    );
    process.kill(conmon, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    // Its new parent reaps it; until then /proc still shows it.
    const end = Date.now() + 5000;
    while (existsSync(`/proc/${pid}`) && Date.now() < end) spawnSync('sleep', ['0.05']);

    const r = h([
      'start',
      '--all',
      '--filter',
      'restart-policy=always',
      '--filter',
      'restart-policy=unless-stopped',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').sort(), ['always', 'crashed']);
    assert.equal(status(), 'always running\ncrashed running\nnever exited\nunless exited');
  });
});
