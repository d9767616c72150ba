import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkDistinct,
  formatPorts,
  parseExposed,
  parsePublish,
  publishAllBindings,
} from '../../../src/network/ports.ts';
import { HutchError } from '../../../src/util/errors.ts';

const tcp = (hostPort: number, containerPort: number, hostIp = '') => ({
  hostIp,
  hostPort,
  containerPort,
  protocol: 'tcp' as const,
});

describe('-p grammar', () => {
  it('takes docker forms', () => {
    assert.deepEqual(parsePublish('80'), [tcp(0, 80)]);
    assert.deepEqual(parsePublish('8080:80'), [tcp(8080, 80)]);
    assert.deepEqual(parsePublish('127.0.0.1:8080:80'), [tcp(8080, 80, '127.0.0.1')]);
    assert.deepEqual(parsePublish('127.0.0.1::80'), [tcp(0, 80, '127.0.0.1')]);
    assert.deepEqual(parsePublish('0.0.0.0:8080:80/tcp'), [tcp(8080, 80)]);
    assert.deepEqual(parsePublish('5353:53/udp'), [
      { hostIp: '', hostPort: 5353, containerPort: 53, protocol: 'udp' },
    ]);
    assert.deepEqual(parsePublish('[::1]:8080:80'), [tcp(8080, 80, '::1')]);
    assert.deepEqual(parsePublish('::1:8080:80'), [tcp(8080, 80, '::1')]);
  });

  it('expands ranges port by port, and a host range for one port is a choice', () => {
    assert.deepEqual(parsePublish('8000-8002:80-82'), [tcp(8000, 80), tcp(8001, 81), tcp(8002, 82)]);
    assert.deepEqual(parsePublish('7000-7001'), [tcp(0, 7000), tcp(0, 7001)]);
    assert.deepEqual(parsePublish('9000-9010:80'), [{ ...tcp(9000, 80), hostPortEnd: 9010 }]);
  });

  it('refuses what cannot be published, saying what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['', /not a container port/],
      ['abc', /not a container port/],
      ['0:80', /host port 0 is outside/],
      ['8080:70000', /container port 70000 is outside/],
      ['8000-8001:80-82', /host range has 2 ports and the container range 3/],
      ['90-80', /ends before it starts/],
      ['300.1.1.1:80:80', /is not an IP address/],
      ['host:80:80', /is not an IP address/],
      ['80/sctp', /SCTP/],
      ['80/icmp', /unknown protocol/],
      ['[::1:80:80', /closing "\]"/],
    ];
    for (const [spec, why] of cases) {
      assert.throws(
        () => parsePublish(spec),
        (e: unknown) => e instanceof HutchError && why.test(e.message),
        spec,
      );
    }
  });

  it('refuses one host port published twice, but not the same port for TCP and UDP', () => {
    assert.throws(
      () => checkDistinct([...parsePublish('8080:80'), ...parsePublish('8080:81')]),
      /published twice/,
    );
    checkDistinct([...parsePublish('8080:80'), ...parsePublish('8080:80/udp')]);
    checkDistinct([...parsePublish('127.0.0.1:8080:80'), ...parsePublish('127.0.0.2:8080:80')]);
  });

  it('-P publishes every exposed port once, after the explicit ones', () => {
    const explicit = parsePublish('8080:80');
    assert.deepEqual(publishAllBindings(['80/tcp', '53/udp', '7000-7001/tcp'], explicit), [
      { hostIp: '', hostPort: 0, containerPort: 53, protocol: 'udp' },
      tcp(0, 7000),
      tcp(0, 7001),
    ]);
    assert.deepEqual(parseExposed('80'), [{ port: 80, protocol: 'tcp' }]);
  });

  it('prints bindings as docker does', () => {
    assert.equal(
      formatPorts([tcp(8080, 80), { ...tcp(5353, 53, '127.0.0.1'), protocol: 'udp' }, tcp(9000, 90, '::1')]),
      '0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp, [::1]:9000->90/tcp',
    );
  });
});
