import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { humanSize } from '../../../src/util/human.ts';

describe('humanSize', () => {
  const cases: [number, string][] = [
    [0, '0B'],
    [999, '999B'],
    [1000, '1kB'],
    [1500, '1.5kB'],
    [100_000, '100kB'],
    [120_000, '120kB'],
    [2_030_000, '2.03MB'],
    [10_000_000, '10MB'],
    [14_700_000, '14.7MB'],
  ];
  for (const [bytes, text] of cases) it(`${bytes} is ${text}`, () => assert.equal(humanSize(bytes), text));
});
