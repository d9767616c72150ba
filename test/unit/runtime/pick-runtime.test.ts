import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { recordedHost } from '../../../src/host/view.ts';
import { pickRuntime } from '../../../src/runtime/oci/runtime.ts';

const HOSTS = fileURLToPath(new URL('../../fixtures/hosts/', import.meta.url));
const both = (name: string): string | undefined => ({ crun: '/usr/bin/crun', runc: '/usr/sbin/runc' })[name];

describe('pickRuntime', () => {
  it('takes crun where the cgroups suit it', () => {
    const c = pickRuntime(undefined, { host: recordedHost(join(HOSTS, 'cgroupv2-delegated')), which: both });
    assert.deepEqual(c, { name: 'crun', path: '/usr/bin/crun', fallback: undefined });
  });

  it('falls back to runc on a hybrid-cgroup host, and says why', () => {
    const c = pickRuntime(undefined, { host: recordedHost(join(HOSTS, 'debian12-hybrid')), which: both });
    assert.equal(c.name, 'runc');
    assert.equal(c.path, '/usr/sbin/runc');
    assert.match(c.fallback!, /hybrid cgroups/);
    assert.match(c.fallback!, /hutch doctor/);
  });

  it('on a hybrid host without runc, says that crun refuses and what to do', () => {
    const onlyCrun = (n: string): string | undefined => (n === 'crun' ? '/usr/bin/crun' : undefined);
    assert.throws(
      () => pickRuntime(undefined, { host: recordedHost(join(HOSTS, 'debian12-hybrid')), which: onlyCrun }),
      /crun refuses this host's hybrid cgroups, and runc is not installed/,
    );
  });

  it('honours an explicit choice, and names a missing one', () => {
    assert.equal(pickRuntime('runc', { which: both }).name, 'runc');
    assert.throws(() => pickRuntime('youki', { which: both }), /"youki" is not installed/);
  });
});
