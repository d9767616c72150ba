import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { locateKey, parseConfig } from '../../../src/config/config.ts';

describe('parseConfig', () => {
  it('accepts a valid file', async () => {
    const c = await parseConfig(
      '[engine]\nruntime = "runc"\nlog_level = "debug"\n[storage]\ndriver = "vfs"\n',
      'f',
    );
    assert.equal(c.engine?.runtime, 'runc');
    assert.equal(c.storage?.driver, 'vfs');
  });
  it("takes the zfs driver's parent dataset", async () => {
    const c = await parseConfig('[storage]\nzfs_dataset = "tank/hutch"\n', 'f');
    assert.equal(c.storage?.zfs_dataset, 'tank/hutch');
  });
  const bad: { name: string; text: string; message: RegExp }[] = [
    { name: 'bad syntax', text: '[engine]\nruntime = "crun\n', message: /^\/x\/hutch\.toml:2:\d+: / },
    {
      name: 'unknown key',
      text: '[engine]\nruntime = "crun"\nruntme = "x"\n',
      message: /hutch\.toml:3: engine\.runtme: unknown key/,
    },
    {
      name: 'unknown table',
      text: '\n[engin]\nruntime = "crun"\n',
      message: /hutch\.toml:2: engin: unknown key/,
    },
    { name: 'wrong type', text: '[storage]\n\ndriver = 5\n', message: /hutch\.toml:3: storage\.driver: / },
    { name: 'bad enum', text: '[engine]\nlog_level = "loud"\n', message: /hutch\.toml:2: engine\.log_level/ },
    {
      name: 'relative root',
      text: '[storage]\nroot = "data"\n',
      message: /hutch\.toml:2: storage\.root: must be an absolute path/,
    },
    {
      name: 'a path for zfs_dataset',
      text: '[storage]\nzfs_dataset = "/tank/hutch"\n',
      message: /hutch\.toml:2: storage\.zfs_dataset: must be a dataset name/,
    },
  ];
  for (const b of bad) {
    it(`reports ${b.name} with file and line`, async () => {
      await assert.rejects(parseConfig(b.text, '/x/hutch.toml'), (e: Error & { code?: string }) => {
        assert.match(e.message, b.message);
        assert.match(e.code ?? '', /^CONFIG_/);
        return true;
      });
    });
  }
});

describe('locateKey', () => {
  it('finds keys in their table only', () => {
    const t = 'driver = 1\n[storage]\n  driver = "x"\n[engine]\ndriver = 2\n';
    assert.equal(locateKey(t, ['storage'], 'driver'), 3);
    assert.equal(locateKey(t, ['engine'], 'driver'), 5);
    assert.equal(locateKey(t, [], 'driver'), 1);
    assert.equal(locateKey(t, [], 'storage'), 2);
  });
});
