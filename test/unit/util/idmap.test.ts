/** The ID mappings of keep-id and nomap, cut to the namespace's own ranges, and owner translation both ways. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  keepIdMapping,
  mapId,
  mappingKey,
  noMapMapping,
  ownerMapper,
  rangesOf,
  splitAtRanges,
  unmapId,
} from '../../../src/util/idmap.ts';

describe('keep-id and nomap mappings', () => {
  it('keep-id puts the kept id on namespace 0 and moves the ids below it up by one', () => {
    const m = keepIdMapping(1001, 65536);
    assert.deepEqual(m, [
      { containerID: 0, hostID: 1, size: 1001 },
      { containerID: 1001, hostID: 0, size: 1 },
      { containerID: 1002, hostID: 1002, size: 64535 },
    ]);
    assert.equal(mapId(m, 0), 1);
    assert.equal(mapId(m, 1000), 1001);
    assert.equal(mapId(m, 1001), 0);
    assert.equal(mapId(m, 1002), 1002);
    assert.equal(mapId(m, 65536), 65536);
    assert.equal(mapId(m, 65537), undefined);
    assert.equal(unmapId(m, 0), 1001);
    assert.equal(unmapId(m, 1), 0);
  });

  it('keep-id of an id above the namespace keeps every namespace id but 0 for the ids below', () => {
    assert.deepEqual(keepIdMapping(200000, 65536), [
      { containerID: 0, hostID: 1, size: 65536 },
      { containerID: 200000, hostID: 0, size: 1 },
    ]);
  });

  it('keep-id of 0 is the identity with nothing moved', () => {
    assert.deepEqual(keepIdMapping(0, 10), [
      { containerID: 0, hostID: 0, size: 1 },
      { containerID: 1, hostID: 1, size: 10 },
    ]);
  });

  it('nomap leaves namespace 0 (the user) out', () => {
    const m = noMapMapping(65536);
    assert.deepEqual(m, [{ containerID: 0, hostID: 1, size: 65536 }]);
    assert.equal(unmapId(m, 0), undefined);
  });

  it('cuts mappings where the namespace goes from one of its ranges to the next', () => {
    const ranges = rangesOf(
      '         0       1001          1\n         1     100000      65536\n     65537     200000      65536\n',
    );
    assert.deepEqual(ranges, [
      { first: 0, count: 1 },
      { first: 1, count: 65536 },
      { first: 65537, count: 65536 },
    ]);
    assert.deepEqual(splitAtRanges(keepIdMapping(1001, 131072), ranges), [
      { containerID: 0, hostID: 1, size: 1001 },
      { containerID: 1001, hostID: 0, size: 1 },
      { containerID: 1002, hostID: 1002, size: 64535 },
      { containerID: 65537, hostID: 65537, size: 65536 },
    ]);
    assert.deepEqual(splitAtRanges(noMapMapping(131072), ranges), [
      { containerID: 0, hostID: 1, size: 65536 },
      { containerID: 65536, hostID: 65537, size: 65536 },
    ]);
  });

  it('translates owners both ways, an unmapped id becoming nobody', () => {
    const maps = { uid: keepIdMapping(1001, 65536), gid: keepIdMapping(1001, 65536) };
    const toNs = ownerMapper(maps, 'to-namespace');
    const toCt = ownerMapper(maps, 'to-container');
    assert.deepEqual(toNs(0, 0), { uid: 1, gid: 1 });
    assert.deepEqual(toNs(1001, 1001), { uid: 0, gid: 0 });
    assert.deepEqual(toCt(1, 0), { uid: 0, gid: 1001 });
    assert.deepEqual(toCt(70000, 70000), { uid: 65534, gid: 65534 });
    // A container id beyond the mapping is stored as the container's nobody.
    assert.deepEqual(toNs(100000, 100000), { uid: 65534, gid: 65534 });
    const nomap = { uid: noMapMapping(65536), gid: noMapMapping(65536) };
    assert.deepEqual(ownerMapper(nomap, 'to-namespace')(70000, 70000), { uid: 65535, gid: 65535 });
  });

  it('names a mapping with a stable key that tells mappings apart', () => {
    const a = { uid: keepIdMapping(1001, 65536), gid: keepIdMapping(1001, 65536) };
    const b = { uid: keepIdMapping(1000, 65536), gid: keepIdMapping(1001, 65536) };
    assert.equal(mappingKey(a), mappingKey({ uid: [...a.uid], gid: [...a.gid] }));
    assert.notEqual(mappingKey(a), mappingKey(b));
  });
});
