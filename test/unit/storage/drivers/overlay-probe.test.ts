/**
 * The overlay probe of a new store, and its memory in the runtime root: a
 * pass is kept per filesystem and mode, a failure never is.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { overlayWorks } from '../../../../src/storage/drivers/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hutch-overlay-probe-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('overlay probe memory', () => {
  it('keeps a pass per filesystem and mode, and asks the probe again after a failure', () => {
    const probes = join(tmp, 'probes');
    const calls: boolean[] = [];
    let answer = false;
    const probe = (_root: string, rootless: boolean): boolean => {
      calls.push(rootless);
      return answer;
    };
    const root = join(tmp, 'store-a');
    assert.equal(overlayWorks(root, true, probes, probe), false);
    assert.equal(overlayWorks(root, true, probes, probe), false);
    assert.equal(calls.length, 2, 'a failure is not remembered');
    assert.equal(existsSync(probes), false);

    answer = true;
    assert.equal(overlayWorks(root, true, probes, probe), true);
    assert.equal(calls.length, 3);
    const { dev } = statSync(root);
    const type = statfsSync(root).type.toString(16);
    assert.deepEqual(readdirSync(probes), [`overlay-${dev}-${type}-userxattr`]);

    // Another store on the same filesystem: no probe. Another mode: probed.
    answer = false;
    assert.equal(overlayWorks(join(tmp, 'store-b'), true, probes, probe), true);
    assert.equal(calls.length, 3);
    assert.equal(overlayWorks(join(tmp, 'store-b'), false, probes, probe), false);
    assert.deepEqual(calls, [true, true, true, false]);
    // Without a probe directory nothing is remembered or consulted.
    assert.equal(overlayWorks(join(tmp, 'store-c'), true, undefined, probe), false);
  });

  it('remembers what the real probe (a test mount by hutch-helper) found', (t) => {
    const probes = join(tmp, 'real-probes');
    const root = join(tmp, 'store-real');
    const rootless = process.getuid?.() !== 0;
    const works = overlayWorks(root, rootless, probes);
    if (!works) {
      t.skip('kernel overlay cannot be mounted here, so there is no pass to remember');
      return;
    }
    assert.equal(readdirSync(probes).length, 1);
    assert.deepEqual(readdirSync(root), [], 'the probe cleans up after itself');
  });
});
