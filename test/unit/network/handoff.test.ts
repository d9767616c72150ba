import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { handoffPorts, kernelCanHandOff } from '../../../src/network/handoff.ts';
import { pastaArgs } from '../../../src/network/pasta.ts';
import type { PortBinding } from '../../../src/network/ports.ts';
import { withHandoff } from '../../../src/runtime/security.ts';

const tcp = (hostIp: string, hostPort: number, containerPort: number): PortBinding => ({
  hostIp,
  hostPort,
  containerPort,
  protocol: 'tcp',
});

describe('published ports handed to the container (hutch-handoff)', () => {
  it('hands over TCP ports published once, on every address or 127.0.0.1', () => {
    const ports = [
      tcp('', 8080, 80),
      tcp('127.0.0.1', 8443, 443),
      tcp('0.0.0.0', 9000, 9000),
      tcp('10.0.0.5', 5432, 5432),
      tcp('::1', 6379, 6379),
      tcp('127.0.0.1', 8001, 81),
      tcp('127.0.0.1', 8002, 81),
      { hostIp: '', hostPort: 5353, containerPort: 53, protocol: 'udp' } as const,
    ];
    assert.deepEqual(
      handoffPorts(ports).map((p) => p.containerPort),
      [80, 443, 9000],
      'not UDP, not another host address, not a container port published twice',
    );
  });

  it('needs Linux 5.9 for the descriptor it puts in place', () => {
    assert.equal(kernelCanHandOff('6.1.0-18-amd64'), true);
    assert.equal(kernelCanHandOff('5.9.0'), true);
    assert.equal(kernelCanHandOff('5.8.18'), false);
    assert.equal(kernelCanHandOff('4.19.0'), false);
    assert.equal(kernelCanHandOff('garbage'), false);
  });

  it("forwards a handed-over port's container loopback to the host's, and nothing else", () => {
    const args = pastaArgs({
      pasta: 'pasta',
      netns: '/run/ns',
      pidFile: '/run/ns.pid',
      ports: [],
      hostLoopback: false,
      dnsForward: undefined,
      extra: [],
      toHost: [{ containerPort: 80, hostPort: 8080 }],
    }).join(' ');
    assert.match(args, /-T 80:8080 -U none/);
    assert.match(args, /-t none -u none/);
  });

  it('stops bind (and connect) with a rule of their own, taken out of the rules that allow them', () => {
    const f = withHandoff(
      {
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [
          { names: ['accept', 'bind', 'connect', 'read'], action: 'SCMP_ACT_ALLOW' },
          { names: ['bind'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] },
          { names: ['mount'], action: 'SCMP_ACT_ERRNO' },
        ],
      },
      '/run/x.handoff',
      ['bind', 'connect'],
    );
    assert.equal(f.listenerPath, '/run/x.handoff');
    assert.equal(f.defaultAction, 'SCMP_ACT_ERRNO');
    assert.deepEqual(f.syscalls, [
      { names: ['accept', 'read'], action: 'SCMP_ACT_ALLOW' },
      { names: ['mount'], action: 'SCMP_ACT_ERRNO' },
      { names: ['bind', 'connect'], action: 'SCMP_ACT_NOTIFY' },
    ]);
    const unconfined = withHandoff(undefined, '/run/y', ['bind']);
    assert.deepEqual(unconfined, {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['bind'], action: 'SCMP_ACT_NOTIFY' }],
      listenerPath: '/run/y',
    });
  });
});
