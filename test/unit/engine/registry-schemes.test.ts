/** The runtime root's memory of registries that speak plain HTTP only. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { schemeMemory } from '../../../src/engine/registry-schemes.ts';

const runroot = mkdtempSync(join(tmpdir(), 'hutch-schemes-'));
after(() => rmSync(runroot, { recursive: true, force: true }));

describe('registry scheme memory', () => {
  it('keeps one private mark per registry, shared by every command of the runtime root', () => {
    const m = schemeMemory(runroot);
    assert.equal(m.plainHttp('127.0.0.1:5000'), false);
    m.remember('127.0.0.1:5000', true);
    m.remember('[::1]:5000', true);
    assert.equal(schemeMemory(runroot).plainHttp('127.0.0.1:5000'), true, 'a later command sees it');
    assert.equal(m.plainHttp('127.0.0.1:5001'), false, 'the port is part of the name');
    assert.deepEqual(readdirSync(join(runroot, 'registries')).sort(), [
      '%5B%3A%3A1%5D%3A5000.http',
      '127.0.0.1%3A5000.http',
    ]);
    assert.equal(statSync(join(runroot, 'registries')).mode & 0o777, 0o700);
    m.remember('127.0.0.1:5000', false);
    assert.equal(m.plainHttp('127.0.0.1:5000'), false);
    m.remember('never.seen', false);
  });

  it('only costs speed when the runtime root cannot be written', () => {
    const file = join(runroot, 'a-file');
    writeFileSync(file, '');
    const m = schemeMemory(file);
    m.remember('127.0.0.1:5000', true);
    assert.equal(m.plainHttp('127.0.0.1:5000'), false);
  });
});
