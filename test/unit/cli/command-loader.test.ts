import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flagSignature } from '../../../src/cli/command-loader.ts';

describe('flagSignature', () => {
  const cases: [string[], string][] = [
    [['ps'], ''],
    [['ps', '-a'], 'a'],
    [['ps', '-aq'], 'a,q'],
    [['ps', '-q', '-a'], 'a,q'],
    [['ps', '--format', '{{.ID}}'], 'format'],
    [['ps', '--format={{.ID}}', '-a'], 'a,format'],
    [['run', '--rm', 'busybox', '--', '-x'], 'rm'],
    [['run', '-', 'x'], ''],
  ];
  for (const [argv, sig] of cases) {
    it(`${argv.join(' ')} -> "${sig}"`, () => assert.equal(flagSignature(argv), sig));
  }
});
