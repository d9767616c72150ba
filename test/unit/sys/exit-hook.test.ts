/**
 * conmon's exit hook (native/helper.c) decides between the runtime's delete
 * and hutch's cleanup command. /bin/echo stands in for both, so the test
 * reads which one the hook ran, and with which arguments.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { helperPath } from '../../../src/sys/native-paths.ts';
import { tempDir } from '../../support/temp.ts';

function hook(ownerFile: string): string {
  return execFileSync(
    helperPath(),
    ['exit-hook', ownerFile, '/bin/echo', 'RUNROOT', 'ID', '/bin/echo', 'cleanup'],
    {
      encoding: 'utf8',
    },
  ).trim();
}

function bundle(): string {
  const b = join(tempDir('exit-hook-'), 'bundle');
  mkdirSync(b);
  return b;
}

const DELETE = '--root=RUNROOT delete --force ID';

describe('exit hook', () => {
  it('leaves the exit to the cleanup command when no foreground command owns the container', () => {
    assert.equal(hook(join(bundle(), 'owner')), 'cleanup');
  });

  it('only deletes in the runtime while the owning foreground command lives', () => {
    const b = bundle();
    writeFileSync(join(b, 'owner'), `${process.pid}\n`);
    assert.equal(hook(join(b, 'owner')), DELETE);
  });

  it('runs the cleanup command when the owner ended without finishing', () => {
    const b = bundle();
    const gone = spawnSync('/bin/true').pid;
    writeFileSync(join(b, 'owner'), `${gone}\n`);
    assert.equal(hook(join(b, 'owner')), 'cleanup');
  });

  it('deletes in the runtime when the container was removed before the hook ran', () => {
    // A foreground `run --rm` removed the bundle and ended first: cleanup would find nothing.
    assert.equal(hook(join(bundle(), 'removed', 'owner')), DELETE);
  });
});
