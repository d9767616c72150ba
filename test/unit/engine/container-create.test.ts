import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generatedName, parseRestart } from '../../../src/engine/containers/create.ts';
import { restartDelay } from '../../../src/engine/containers/cleanup.ts';
import { EMPTY_STATE } from '../../../src/runtime/containers/types.ts';
import type { ContainerRecord } from '../../../src/runtime/containers/types.ts';
import { parseDetachKeys } from '../../../src/cli/commands/run.ts';

describe('restart policies', () => {
  it("reads docker's forms", () => {
    assert.deepEqual(parseRestart(undefined), { name: 'no', maximumRetryCount: 0 });
    assert.deepEqual(parseRestart('on-failure:3'), { name: 'on-failure', maximumRetryCount: 3 });
    assert.deepEqual(parseRestart('on-failure'), { name: 'on-failure', maximumRetryCount: 0 });
    assert.deepEqual(parseRestart('always'), { name: 'always', maximumRetryCount: 0 });
    assert.deepEqual(parseRestart('unless-stopped'), { name: 'unless-stopped', maximumRetryCount: 0 });
    assert.throws(() => parseRestart('always:3'), /invalid restart policy/);
    assert.throws(() => parseRestart('on-failure:x'), /whole number/);
    assert.throws(() => parseRestart('sometimes'), /invalid restart policy/);
  });

  it('backs off as docker does: doubling from 100 ms, at most a minute, reset after 10 s of running', () => {
    const rec = (count: number, ranMs: number): ContainerRecord =>
      ({
        state: {
          ...EMPTY_STATE,
          restartCount: count,
          startedAt: new Date(0).toISOString(),
          finishedAt: new Date(ranMs).toISOString(),
        },
      }) as ContainerRecord;
    assert.equal(restartDelay(rec(0, 50)), 100);
    assert.equal(restartDelay(rec(3, 50)), 800);
    assert.equal(restartDelay(rec(20, 50)), 60_000);
    assert.equal(restartDelay(rec(20, 11_000)), 100);
  });
});

describe('names and keys', () => {
  it('makes docker-style names that differ with the id', () => {
    const a = generatedName('0123456789abcdef'.repeat(4));
    const b = generatedName('fedcba9876543210'.repeat(4));
    assert.match(a, /^[a-z]+_[a-z]+_[0-9a-f]{4}$/);
    assert.notEqual(a, b);
  });

  it("reads detach keys: ctrl-p,ctrl-q by default, '' for none", () => {
    assert.deepEqual([...parseDetachKeys(undefined)!], [0x10, 0x11]);
    assert.deepEqual([...parseDetachKeys('ctrl-a,x')!], [0x01, 0x78]);
    assert.equal(parseDetachKeys(''), undefined);
    assert.throws(() => parseDetachKeys('alt-x'), /invalid detach key/);
  });
});
