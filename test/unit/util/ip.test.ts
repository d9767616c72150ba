import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import { ipFamily } from '../../../src/util/ip.ts';

describe('ipFamily', () => {
  const cases: [string, 0 | 4 | 6][] = [
    ['127.0.0.1', 4],
    ['0.0.0.0', 4],
    ['255.255.255.255', 4],
    ['256.1.1.1', 0],
    ['01.2.3.4', 0],
    ['1.2.3', 0],
    ['1.2.3.4.', 0],
    ['::', 6],
    ['::1', 6],
    ['1::', 6],
    ['fe80::1%eth0', 6],
    ['fe80::1%', 0],
    ['2001:db8::8a2e:370:7334', 6],
    ['1:2:3:4:5:6:7:8', 6],
    ['1:2:3:4:5:6:7::', 6],
    ['::2:3:4:5:6:7:8', 6],
    ['1:2:3:4:5:6:7:8::', 0],
    ['1:2:3:4:5:6:7', 0],
    ['::ffff:192.0.2.1', 6],
    ['1:2:3:4:5:6:1.2.3.4', 6],
    ['1:2:3:4:5:1.2.3.4::', 0],
    ['1.2.3.4::', 0],
    ['1:::2', 0],
    [':1', 0],
    ['1::2::3', 0],
    ['12345::', 0],
    ['g::1', 0],
    ['', 0],
    ['host.example', 0],
  ];
  for (const [text, family] of cases) {
    it(`${JSON.stringify(text)} is ${family || 'not an address'}`, () =>
      assert.equal(ipFamily(text), family));
  }

  it("agrees with node:net's isIP on generated addresses and near-misses", () => {
    // A fixed generator, so a failure names a reproducible input.
    let seed = 12345;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pieces = [
      '0',
      '1',
      'ff',
      'ffff',
      'abcd',
      '12345',
      'g',
      '',
      '1.2.3.4',
      '255.0.0.1',
      '300.1.1.1',
      '%eth0',
    ];
    let checked = 0;
    for (let i = 0; i < 20000; i++) {
      const n = 1 + next(10);
      let text = '';
      for (let k = 0; k < n; k++) {
        text += pieces[next(pieces.length)];
        if (k < n - 1) text += [':', '::', '.', ':'][next(4)];
      }
      assert.equal(ipFamily(text), isIP(text), `ipFamily(${JSON.stringify(text)})`);
      checked++;
    }
    assert.equal(checked, 20000);
  });

  it("agrees with node:net's isIP on IPv6 addresses, compressed, with IPv4 tails and zones, and mutations of them", () => {
    let seed = 777;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const hex = (): string => (next(0x10000) >> next(16)).toString(16);
    const families: Record<number, number> = { 0: 0, 4: 0, 6: 0 };
    for (let i = 0; i < 20000; i++) {
      const v4tail = next(4) === 0;
      const groups = Array.from({ length: v4tail ? 6 : 8 }, hex);
      if (v4tail) groups.push(`${next(256)}.${next(256)}.${next(256)}.${next(256)}`);
      let text = groups.join(':');
      if (next(2) === 0) {
        // Compress a run of groups into "::".
        const from = next(groups.length);
        const to = from + 1 + next(groups.length - from);
        text = `${groups.slice(0, from).join(':')}::${groups.slice(to).join(':')}`;
      }
      if (next(5) === 0) text += '%eth0';
      if (next(2) === 0) {
        // A near miss: one character dropped, doubled or replaced.
        const at = next(text.length);
        const how = next(3);
        const ch = ':.g0%'[next(5)]!;
        text =
          how === 0
            ? text.slice(0, at) + text.slice(at + 1)
            : how === 1
              ? text.slice(0, at) + text[at] + text.slice(at)
              : text.slice(0, at) + ch + text.slice(at + 1);
      }
      const expected = isIP(text);
      families[expected] = (families[expected] ?? 0) + 1;
      assert.equal(ipFamily(text), expected, `ipFamily(${JSON.stringify(text)})`);
    }
    // The generator must have produced both kinds, or the comparison proves little.
    assert.ok(families[6]! > 5000 && families[0]! > 2000, JSON.stringify(families));
  });
});
