/**
 * The ways hutch is started: bin/hutch (a link to the native launcher, which
 * acts as `hutch-helper run` under any name but its own), a link to it from
 * elsewhere, and bin/hutch-launch, the script npm links for installs from
 * the registry. Each must find the package, join the user's namespace and
 * hand the arguments to Node unchanged.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readlinkSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROJECT, sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';

const rootless = process.getuid!() !== 0;

describe('launchers', { skip: rootless ? false : 'runs as the unprivileged test user only' }, () => {
  let box: Sandbox;
  before(() => {
    box = sandbox();
  });
  after(() => box.cleanup());

  function via(file: string, args: string[]): Result {
    const r = spawnSync(file, args, {
      encoding: 'utf8',
      env: box.env,
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    return { status: r.status ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }

  // Inside the namespace the launcher joins, uid 0; the working directory and operands pass through.
  const probe = ['unshare', '--', 'sh', '-c', 'id -u; printf "%s|" "$@"', 'sh', 'a b', '', '-x'];
  const expected = '0\na b||-x|';

  it('bin/hutch is a link to the native launcher', () => {
    assert.ok(lstatSync(join(PROJECT, 'bin/hutch')).isSymbolicLink());
    assert.equal(readlinkSync(join(PROJECT, 'bin/hutch')), '../native/build/hutch-helper');
    const r = via(join(PROJECT, 'bin/hutch'), probe);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, expected);
  });

  it('a link to bin/hutch from another directory finds the package', () => {
    mkdirSync(join(box.dir, 'bin'), { recursive: true });
    const link = join(box.dir, 'bin', 'hutch');
    symlinkSync(join(PROJECT, 'bin/hutch'), link);
    const r = via(link, probe);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, expected);
  });

  it("npm's link to bin/hutch-launch runs the same hutch", () => {
    mkdirSync(join(box.dir, 'node_modules/.bin'), { recursive: true });
    const link = join(box.dir, 'node_modules/.bin/hutch');
    symlinkSync(join(PROJECT, 'bin/hutch-launch'), link);
    const r = via(link, probe);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, expected);
    const v1 = via(link, ['version', '--format', '{{.Client.Version}}']);
    const v2 = via(join(PROJECT, 'bin/hutch'), ['version', '--format', '{{.Client.Version}}']);
    assert.equal(v1.status, 0, v1.stderr);
    assert.equal(v1.stdout, v2.stdout);
  });

  it("Node's own errors and exit codes come through: an unknown command is 125", () => {
    const r = via(join(PROJECT, 'bin/hutch'), ['no-such-command']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /unknown command "no-such-command"/);
  });

  it('under its own name the helper keeps its modes and refuses others', () => {
    const r = via(join(PROJECT, 'native/build/hutch-helper'), ['version']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /unknown mode version/);
  });
});
