import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostNatRules, infraNatRules, splitForKernel } from '../../../src/network/kernel-publish.ts';
import type { PortBinding } from '../../../src/network/ports.ts';

const p = (
  hostIp: string,
  hostPort: number,
  containerPort: number,
  protocol: 'tcp' | 'udp' = 'tcp',
): PortBinding => ({
  hostIp,
  hostPort,
  containerPort,
  protocol,
});
const link = { hostIf: 'hutch0123abcd', hostAddr: '169.254.130.1', infraAddr: '169.254.130.2' };

describe('ports published by the kernel (rootful, user networks)', () => {
  it('gives the kernel what it can route, and the relay loopback and IPv6', () => {
    const { nat, relay } = splitForKernel([
      p('', 8080, 80),
      p('10.0.0.5', 5432, 5432),
      p('127.0.0.1', 9000, 90),
      p('::1', 9001, 91),
    ]);
    assert.deepEqual(nat, [p('', 8080, 80), p('10.0.0.5', 5432, 5432)]);
    assert.deepEqual(relay, [
      p('127.0.0.1', 8080, 80),
      p('::', 8080, 80),
      p('127.0.0.1', 9000, 90),
      p('::1', 9001, 91),
    ]);
  });

  it('DNATs the host own addresses to the infra end, from outside and from the host itself, then on to the container', () => {
    const host = hostNatRules('0123456789abcdef', link, [p('', 8080, 80), p('10.0.0.5', 53, 53, 'udp')]);
    assert.match(host, /table ip hutch_p_0123456789ab \{/);
    assert.match(
      host,
      /hook prerouting[\s\S]*fib daddr type local tcp dport 8080 dnat to 169\.254\.130\.2:8080/,
    );
    assert.match(host, /fib daddr type local ip daddr 10\.0\.0\.5 udp dport 53 dnat to 169\.254\.130\.2:53/);
    assert.match(host, /hook output[\s\S]*ip daddr != 127\.0\.0\.0\/8 fib daddr type local tcp dport 8080/);
    const infra = infraNatRules('0123456789abcdef', link, '10.88.0.2', [p('', 8080, 80)]);
    assert.match(infra, /iifname "eth0" ip daddr 169\.254\.130\.2 tcp dport 8080 dnat to 10\.88\.0\.2:80/);
  });
});
