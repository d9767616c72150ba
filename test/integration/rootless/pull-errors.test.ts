/**
 * Bad registry replies: each a clear error, exit 125, and nothing half-made
 * left in the store (system check finds no problem and no leftover layer).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';
import type { Sandbox } from '../../support/hutch.ts';
import { startFakeRegistryProcess } from '../../support/fake-registry.ts';
import type { FakeRegistry, Mode } from '../../support/fake-registry.ts';

describe('pull from a misbehaving registry', () => {
  let box: Sandbox;
  let fake: FakeRegistry;
  before(async () => {
    box = sandbox();
    fake = await startFakeRegistryProcess();
  });
  after(async () => {
    await fake.close();
    box.cleanup();
  });

  const storeIsClean = (): void => {
    const r = box.hutch(['system', 'check', '--format', 'json']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const findings = (JSON.parse(r.stdout) as { findings: { severity: string; what: string }[] }).findings;
    assert.deepEqual(
      findings.filter((f) => f.severity === 'problem'),
      [],
    );
    assert.deepEqual(box.hutch(['images', '-q']).stdout.trim(), '');
    const driver = box.hutch(['info', '--format', '{{.Store.GraphDriverName}}']).stdout.trim();
    const layers = readdirSync(`${box.root}/storage/${driver}/layers`).filter((n) => !n.startsWith('.'));
    assert.deepEqual(layers, [], 'no layer is left behind');
  };

  const cases: [Mode, string, RegExp][] = [
    [
      'blob-mismatch',
      'DIGEST_MISMATCH or LAYER_CORRUPT',
      /layer sha256:[0-9a-f]{64} of .* (could not be unpacked|has digest)|blob sha256/,
    ],
    ['ahead-mismatch', 'DIGEST_MISMATCH of a layer downloaded ahead', /blob sha256:[0-9a-f]{64} has digest/],
    ['manifest-mismatch', 'DIGEST_MISMATCH', /manifest|digest/],
    ['truncated', 'truncated', /.+/],
    ['unauthorized', 'UNAUTHORIZED', /hutch login/],
    ['forbidden', 'DENIED', /denied/i],
    ['notfound', 'NOT_FOUND', /manifest unknown|not found/i],
    ['ratelimited', 'TOO_MANY_REQUESTS', /.+/],
    ['servererror', 'REGISTRY_ERROR', /.+/],
    ['garbage', 'BAD_RESPONSE|BAD_MANIFEST', /JSON/],
    ['helm', 'WRONG_MEDIA_TYPE', /not an image config/],
    ['diffid-mismatch', 'DIGEST_MISMATCH', /unpacks to/],
    ['schema1', 'UNSUPPORTED_SCHEMA1', /schema 1[\s\S]*re-push/i],
  ];
  for (const [mode, what, re] of cases) {
    it(`${mode}: a clear error and a clean store`, () => {
      const ref =
        mode === 'manifest-mismatch'
          ? `${fake.host}/${mode}/app@${fake.manifestDigest}`
          : `${fake.host}/${mode}/app:latest`;
      const r = box.hutch(['pull', ref]);
      assert.equal(r.status, 125, `${what}: ${r.stderr}`);
      assert.match(r.stderr, /^Error: /m);
      assert.match(r.stderr, re);
      assert.match(r.stderr, new RegExp(`${fake.host}|app`), 'the message names the registry or the image');
      storeIsClean();
    });
  }

  it('stops the layer downloads under way when the config fails, leaving no partial file', async () => {
    const r = box.hutch(['pull', `${fake.host}/config-missing/app:latest`]);
    assert.equal(r.status, 125, r.stderr);
    assert.match(r.stderr, /blob unknown|not found/i);
    const check = box.hutch(['system', 'check', '--format', 'json']);
    const findings = (JSON.parse(check.stdout) as { findings: { what: string }[] }).findings;
    assert.deepEqual(findings, [], 'not even a partial download to clean up');
    const ingest = readdirSync(`${box.root}/images/ingest`).filter((n) => !n.endsWith('.lock'));
    assert.deepEqual(ingest, []);
    // Stopped, not left to finish: none of the layers' blobs was stored.
    const res = await fetch(`http://${fake.host}/v2/config-missing/app/manifests/latest`);
    const layers = ((await res.json()) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
    assert.equal(layers.length, 3);
    const stored = new Set(readdirSync(`${box.root}/images/blobs/sha256`));
    assert.deepEqual(
      layers.filter((d) => stored.has(d.slice('sha256:'.length))),
      [],
    );
  });

  it('resumes a download whose connection broke halfway, and verifies it whole', () => {
    const r = box.hutch(['pull', '-q', `${fake.host}/flaky/app:latest`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(box.hutch(['rmi', `${fake.host}/flaky/app:latest`]).status, 0);
    storeIsClean();
  });

  it('tries the search registries in order for a short name', { skip: NEEDS_REGISTRY }, () => {
    mkdirSync(`${box.dir}/config/hutch`, { recursive: true });
    writeFileSync(
      `${box.dir}/config/hutch/hutch.toml`,
      `[registries]\nsearch = ["${fake.host}", "${REGISTRY}"]\n`,
    );
    try {
      const r = box.hutch(['pull', 'busybox']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), `${REGISTRY}/busybox:latest`);
      assert.match(r.stderr, new RegExp(`Pulling ${fake.host}/busybox:latest`));
      assert.equal(box.hutch(['rmi', 'busybox']).status, 0);
    } finally {
      rmSync(`${box.dir}/config/hutch/hutch.toml`);
    }
  });

  it('and the same registry serving the image properly pulls it', () => {
    const r = box.hutch(['pull', `${fake.host}/ok/app:latest`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(box.hutch(['images', '-q']).stdout.trim().length, 12);
    assert.equal(box.hutch(['rmi', `${fake.host}/ok/app:latest`]).status, 0);
  });
});
