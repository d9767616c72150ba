/** `--userns` values: what is accepted where, and the mappings they give. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUserns, usernsMappings } from '../../../src/runtime/userns.ts';

const NS = {
  uid: [
    { first: 0, count: 1 },
    { first: 1, count: 65536 },
  ],
  gid: [
    { first: 0, count: 1 },
    { first: 1, count: 65536 },
  ],
};

describe('--userns', () => {
  it('host and empty share the namespace', () => {
    assert.deepEqual(parseUserns('', true), { mode: 'host' });
    assert.deepEqual(parseUserns('host', false), { mode: 'host' });
    assert.equal(usernsMappings({ mode: 'host' }, { uid: 1000, gid: 1000 }, NS), undefined);
  });

  it('keep-id keeps the user, or the uid and gid given', () => {
    assert.deepEqual(parseUserns('keep-id', true), { mode: 'keep-id' });
    assert.deepEqual(parseUserns('keep-id:uid=500,gid=600', true), { mode: 'keep-id', uid: 500, gid: 600 });
    const m = usernsMappings(parseUserns('keep-id:gid=600', true), { uid: 1000, gid: 1000 }, NS)!;
    assert.deepEqual(m.uid[1], { containerID: 1000, hostID: 0, size: 1 });
    assert.deepEqual(m.gid[1], { containerID: 600, hostID: 0, size: 1 });
  });

  it('nomap maps only the sub-ids', () => {
    const m = usernsMappings(parseUserns('nomap', true), { uid: 1000, gid: 1000 }, NS)!;
    assert.deepEqual(m.uid, [{ containerID: 0, hostID: 1, size: 65536 }]);
  });

  it('refuses keep-id and nomap as root, auto, unknown modes and options, with what to use', () => {
    for (const [value, rootless, pattern] of [
      ['keep-id', false, /only for rootless/],
      ['nomap', false, /only for rootless/],
      ['auto', true, /auto is not supported/],
      ['private', true, /not supported/],
      ['keep-id:size=10', true, /not an option of keep-id/],
      ['keep-id:uid=x', true, /not an option of keep-id/],
      ['nomap:uid=1', true, /takes no options/],
    ] as const) {
      assert.throws(
        () => parseUserns(value, rootless),
        (e: Error & { hint?: string }) => pattern.test(e.message) && (e.hint ?? '').length > 0,
        value,
      );
    }
  });

  it('needs sub-ids', () => {
    assert.throws(
      () =>
        usernsMappings(
          { mode: 'nomap' },
          { uid: 1000, gid: 1000 },
          { uid: [{ first: 0, count: 1 }], gid: [{ first: 0, count: 1 }] },
        ),
      /needs sub-ids/,
    );
  });
});
