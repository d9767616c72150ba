import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ContainerStore } from '../../../src/runtime/containers/store.ts';
import { EMPTY_STATE } from '../../../src/runtime/containers/types.ts';
import type { ContainerRecord } from '../../../src/runtime/containers/types.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function newStore(): ContainerStore {
  const d = mkdtempSync(join(tmpdir(), 'hutch-summaries-'));
  dirs.push(d);
  return new ContainerStore(join(d, 'root'), join(d, 'run'));
}

function record(n: number): ContainerRecord {
  return {
    id: n.toString(16).padStart(64, '0'),
    name: `c${n}`,
    created: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    driver: 'vfs',
    config: {
      image: 'busybox',
      imageId: 'a'.repeat(64),
      entrypoint: [],
      cmd: ['true'],
      env: ['PATH=/bin'],
      labels: { n: String(n) },
    },
    hostConfig: { mounts: [], networkMode: 'none', restartPolicy: { name: 'no', maximumRetryCount: 0 } },
    state: { ...EMPTY_STATE, status: 'created' },
  } as unknown as ContainerRecord;
}

function add(s: ContainerStore, n: number): ContainerRecord {
  const r = record(n);
  s.add(r, () => {});
  return r;
}

const names = (s: ContainerStore): string[] => s.summaries().map((x) => x.name);

describe('the summaries ps reads', () => {
  it('hold what ps shows and filters on, not the rest of a record', () => {
    const s = newStore();
    add(s, 1);
    const [x] = s.summaries();
    assert.equal(x!.name, 'c1');
    assert.deepEqual(x!.config.labels, { n: '1' });
    assert.deepEqual(x!.hostConfig.restartPolicy, { name: 'no', maximumRetryCount: 0 });
    assert.equal('env' in x!.config, false);
  });

  it('come from the cache while nothing changed, and follow every change through the store', () => {
    const s = newStore();
    add(s, 1);
    add(s, 2);
    assert.deepEqual(names(s).sort(), ['c1', 'c2']);

    // A record changed behind the store's back is not seen: the cache is really what is read.
    const path = s.recordPath(record(1).id);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace('"name":"c1"', '"name":"behind"'));
    assert.deepEqual(names(s).sort(), ['c1', 'c2']);
    // What system check reports (and --repair mends by a new token).
    assert.equal(s.staleSummaries(), true);
    writeFileSync(path, text);
    assert.equal(s.staleSummaries(), false);

    s.update(record(1).id, (r) => {
      r.state = { ...r.state, status: 'exited', exitCode: 3 };
    });
    assert.equal(s.summaries().find((x) => x.name === 'c1')!.state.exitCode, 3);
    add(s, 3);
    assert.deepEqual(names(s).sort(), ['c1', 'c2', 'c3']);
    s.remove(record(2).id, 'c2');
    assert.deepEqual(names(s).sort(), ['c1', 'c3']);
    s.rename(record(3).id, 'renamed');
    assert.deepEqual(names(s).sort(), ['c1', 'renamed']);
  });

  it('are made anew from the records when the cache is damaged or its token missing', () => {
    const s = newStore();
    add(s, 1);
    names(s);
    writeFileSync(join(s.dir, 'summaries.cache'), '{"generation":');
    assert.deepEqual(names(s), ['c1']);
    rmSync(join(s.dir, 'generation'));
    add(s, 2);
    rmSync(join(s.dir, 'generation'));
    assert.deepEqual(names(s).sort(), ['c1', 'c2']);
  });

  it('are not trusted when a cache was made from records older than the token', () => {
    const s = newStore();
    add(s, 1);
    names(s);
    // As if a change landed while another ps was reading: the cache names an older token.
    const cache = JSON.parse(readFileSync(join(s.dir, 'summaries.cache'), 'utf8')) as { generation: string };
    s.update(record(1).id, (r) => {
      r.name = 'changed';
    });
    writeFileSync(
      join(s.dir, 'summaries.cache'),
      JSON.stringify({ generation: cache.generation, summaries: [{ ...record(1), name: 'stale' }] }),
    );
    assert.deepEqual(names(s), ['changed']);
  });
});
