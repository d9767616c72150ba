/** `start --all --filter restart-policy=...`, the boot job of setup's services: docker's rules at daemon start. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startAllSelection } from '../../../../src/engine/containers/start-all.ts';
import type { ContainerView } from '../../../../src/engine/containers/list.ts';
import type { ContainerReader } from '../../../../src/engine/containers/open-light.ts';
import { EMPTY_STATE } from '../../../../src/runtime/containers/types.ts';
import type {
  ContainerRecord,
  ContainerState,
  RestartPolicyName,
} from '../../../../src/runtime/containers/types.ts';

function view(name: string, policy: RestartPolicyName, state: Partial<ContainerState>): ContainerView {
  const s: ContainerState = { ...EMPTY_STATE, status: 'exited', ...state };
  const rec = {
    id: `${name}-id`,
    name,
    created: '2026-01-01T00:00:00Z',
    hostConfig: { restartPolicy: { name: policy, maximumRetryCount: 0 } },
    config: { labels: {} },
    state: s,
  } as unknown as ContainerRecord;
  return { rec, state: s };
}

// The filters used here read nothing from the store.
const reader = {} as ContainerReader;

const list = [
  view('always-after-reboot', 'always', {}),
  view('always-stopped', 'always', { stoppedByUser: true }),
  view('unless-after-reboot', 'unless-stopped', {}),
  view('unless-stopped-by-user', 'unless-stopped', { stoppedByUser: true }),
  view('unless-running', 'unless-stopped', { status: 'running' }),
  view('no-policy', 'no', {}),
  view('on-failure', 'on-failure', { exitCode: 1 }),
];

const names = (filters: string[]): string[] =>
  startAllSelection(list, filters, reader).map((v) => v.rec.name);

describe('start --all selection', () => {
  it('brings back always containers, whatever stopped them', () => {
    assert.deepEqual(names(['restart-policy=always']), ['always-after-reboot', 'always-stopped']);
  });

  it('leaves unless-stopped containers the user stopped as they are, and running ones alone', () => {
    assert.deepEqual(names(['restart-policy=unless-stopped']), ['unless-after-reboot']);
  });

  it('takes both policies in one run, as the boot services ask', () => {
    assert.deepEqual(names(['restart-policy=always', 'restart-policy=unless-stopped']), [
      'always-after-reboot',
      'always-stopped',
      'unless-after-reboot',
    ]);
  });

  it('without a restart-policy filter starts every stopped container, as asked', () => {
    assert.deepEqual(names([]), [
      'always-after-reboot',
      'always-stopped',
      'unless-after-reboot',
      'unless-stopped-by-user',
      'no-policy',
      'on-failure',
    ]);
  });
});
