/**
 * RegistryClient against scripted local HTTP servers (server.ts): auth
 * challenges and tokens, error mapping, retries, redirects, Range resume,
 * uploads, proxies and per-registry TLS.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { RegistryClient, nextLink, retryAfterMs } from '../../../../src/image/registry/client.ts';
import type { RegistryClientOptions } from '../../../../src/image/registry/client.ts';
import type { RegistrySettings } from '../../../../src/image/registry/config.ts';
import { MEDIA } from '../../../../src/image/types.ts';
import { isHutchError } from '../../../../src/util/errors.ts';
import type { HutchError } from '../../../../src/util/errors.ts';
import { json, ociError, pathOf, queryOf, startServer, stopAll } from './server.ts';
import type { SeenRequest, TestServer } from './server.ts';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const ACCEPT = [MEDIA.ociManifest, MEDIA.dockerManifest, MEDIA.ociIndex, MEDIA.dockerList];

const BLOB = randomBytes(200_000);
const BLOB_DIGEST = sha256(BLOB);
const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: BLOB_DIGEST, size: BLOB.length },
    layers: [],
  }),
);
const MANIFEST_DIGEST = sha256(MANIFEST);

const clients: RegistryClient[] = [];
let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hutch-registry-client-'));
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

function settings(over: Partial<RegistrySettings> = {}): RegistrySettings {
  return { mirrors: {}, insecure: [], searchRegistries: [], certDirs: [], ...over };
}

function client(
  registry: TestServer | string,
  over: Partial<RegistryClientOptions> = {},
): { c: RegistryClient; sleeps: number[] } {
  const sleeps: number[] = [];
  const c = new RegistryClient({
    registry: typeof registry === 'string' ? registry : registry.host,
    repository: 'busybox',
    settings: settings(),
    retry: { baseDelayMs: 10, sleep: async (ms) => void sleeps.push(ms) },
    ...over,
  });
  clients.push(c);
  return { c, sleeps };
}

/** Asserts a HutchError with `code` whose message names the registry and the repository. */
async function rejectsWith(
  p: Promise<unknown>,
  code: string,
  registry: string,
  repository: string,
  check?: (e: HutchError) => void,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isHutchError(e), `not a HutchError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.includes(registry), `message names the registry: ${e.message}`);
    assert.ok(e.message.includes(repository), `message names the repository: ${e.message}`);
    assert.ok(e.hint, 'has a hint');
    assert.equal(e.exitCode, 125);
    check?.(e);
    return true;
  });
}

function registryRequests(s: TestServer): SeenRequest[] {
  return s.requests.filter((r) => pathOf(r).startsWith('/v2/'));
}

/** Serves MANIFEST and BLOB for busybox, behind `guard` (which may answer instead). */
function content(guard?: (req: SeenRequest, res: ServerResponse) => boolean) {
  return (req: SeenRequest, res: ServerResponse) => {
    if (guard?.(req, res)) return;
    const path = pathOf(req);
    if (path === '/v2/') return json(res, 200, {});
    if (path === '/v2/busybox/manifests/latest' || path === `/v2/busybox/manifests/${MANIFEST_DIGEST}`) {
      res.writeHead(200, {
        'content-type': MEDIA.ociManifest,
        'docker-content-digest': MANIFEST_DIGEST,
        'content-length': MANIFEST.length,
      });
      return res.end(req.method === 'HEAD' ? undefined : MANIFEST);
    }
    if (path === `/v2/busybox/blobs/${BLOB_DIGEST}`) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BLOB.length });
      return res.end(req.method === 'HEAD' ? undefined : BLOB);
    }
    if (path.includes('/manifests/')) return ociError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
    if (path.includes('/blobs/')) return ociError(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
    return ociError(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
  };
}

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('RegistryClient: authentication', () => {
  it('answers a Bearer challenge with an anonymous token, and reuses the token', async () => {
    const s: TestServer = await startServer(
      content((req, res) => {
        if (pathOf(req) === '/token') {
          json(res, 200, { token: 'tok-anon', expires_in: 300 });
          return true;
        }
        if (req.headers.authorization !== 'Bearer tok-anon') {
          res.setHeader(
            'www-authenticate',
            `Bearer realm="${s.url}/token",service="test-registry",scope="repository:busybox:pull"`,
          );
          ociError(res, 401, 'UNAUTHORIZED', 'authentication required');
          return true;
        }
        return false;
      }),
    );
    const { c } = client(s);
    const m = await c.getManifest('busybox', 'latest', ACCEPT);
    assert.equal(m.digest, MANIFEST_DIGEST);
    assert.equal(m.mediaType, MEDIA.ociManifest);
    assert.deepEqual(m.bytes, MANIFEST);
    const token = s.requests.filter((r) => pathOf(r) === '/token');
    assert.equal(token.length, 1);
    assert.equal(queryOf(token[0]!).get('service'), 'test-registry');
    assert.deepEqual(queryOf(token[0]!).getAll('scope'), ['repository:busybox:pull']);
    assert.equal(token[0]!.headers.authorization, undefined, 'anonymous: no credentials sent');
    assert.equal(
      registryRequests(s)[0]!.headers.accept,
      ACCEPT.join(', '),
      'the Accept header lists the media types asked for',
    );

    // Same scope: the cached token is sent at once, without a new 401 or token request.
    const before = s.requests.length;
    assert.equal((await c.getManifest('busybox', MANIFEST_DIGEST, ACCEPT)).digest, MANIFEST_DIGEST);
    assert.equal(await c.blobExists('busybox', BLOB_DIGEST), true);
    const later = s.requests.slice(before);
    assert.equal(later.length, 2);
    assert.ok(later.every((r) => r.headers.authorization === 'Bearer tok-anon'));
  });

  it('sends credentials to the token service (Basic, account) and accepts access_token', async () => {
    const basic = `Basic ${Buffer.from('alice:pa:ss').toString('base64')}`;
    const s: TestServer = await startServer(
      content((req, res) => {
        if (pathOf(req) === '/auth/token') {
          if (req.headers.authorization !== basic) ociError(res, 401, 'UNAUTHORIZED', 'bad credentials');
          else json(res, 200, { access_token: 'tok-alice' });
          return true;
        }
        if (req.headers.authorization !== 'Bearer tok-alice') {
          res.setHeader('www-authenticate', `Bearer realm="${s.url}/auth/token",service="svc"`);
          ociError(res, 401, 'UNAUTHORIZED', 'authentication required');
          return true;
        }
        return false;
      }),
    );
    const { c } = client(s, { credentials: { username: 'alice', password: 'pa:ss' } });
    const blob = await c.getBlob('busybox', BLOB_DIGEST);
    assert.deepEqual(await readAll(blob.stream), BLOB);
    const token = s.requests.find((r) => pathOf(r) === '/auth/token')!;
    assert.equal(queryOf(token).get('account'), 'alice');
    assert.deepEqual(queryOf(token).getAll('scope'), ['repository:busybox:pull']);

    // ping({authenticate}) proves the credentials the way login does.
    const { c: login } = client(s, { credentials: { username: 'alice', password: 'pa:ss' } });
    assert.deepEqual(await login.ping({ authenticate: true }), {
      url: s.url,
      scheme: 'http',
      auth: 'bearer',
    });
    const { c: wrong } = client(s, {
      credentials: { username: 'alice', password: 'nope', source: '/x/auth.json' },
    });
    await rejectsWith(wrong.ping({ authenticate: true }), 'UNAUTHORIZED', s.host, 'busybox', (e) => {
      assert.match(e.message, /did not accept the credentials from \/x\/auth\.json/);
      assert.equal(e.hint, `Log in with 'hutch login ${s.host}', and check the repository name.`);
    });
    const { c: anon } = client(s);
    assert.equal((await anon.ping()).auth, 'bearer', 'a plain ping reports the challenge');
  });

  it('answers a Basic challenge with the credentials', async () => {
    const basic = `Basic ${Buffer.from('bob:pw').toString('base64')}`;
    const s = await startServer(
      content((req, res) => {
        if (req.headers.authorization !== basic) {
          res.setHeader('www-authenticate', 'Basic realm="Registry Realm"');
          ociError(res, 401, 'UNAUTHORIZED', 'authentication required');
          return true;
        }
        return false;
      }),
    );
    const { c } = client(s, {
      credentials: async (host) => (host === s.host ? { username: 'bob', password: 'pw' } : undefined),
    });
    assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
    assert.equal(await c.blobExists('busybox', BLOB_DIGEST), true);
    assert.equal(registryRequests(s).length, 3, 'after the first challenge, Basic is sent at once');

    const { c: anon } = client(s);
    await rejectsWith(anon.getManifest('busybox', 'latest', ACCEPT), 'UNAUTHORIZED', s.host, 'busybox', (e) =>
      assert.match(e.message, /requires authentication to pull busybox/),
    );
  });

  it('asks one token for both repositories of a mount, and exchanges an identity token by POST', async () => {
    const forms: URLSearchParams[] = [];
    const s: TestServer = await startServer((req, res) => {
      if (pathOf(req) === '/token') {
        assert.equal(req.method, 'POST');
        const form = new URLSearchParams(req.body.toString());
        forms.push(form);
        if (form.get('refresh_token') !== 'refresh-123')
          return ociError(res, 401, 'UNAUTHORIZED', 'bad token');
        return json(res, 200, { access_token: `tok-${forms.length}`, expires_in: 300 });
      }
      if (!String(req.headers.authorization ?? '').startsWith('Bearer tok-')) {
        res.setHeader('www-authenticate', `Bearer realm="${s.url}/token",service="svc"`);
        return ociError(res, 401, 'UNAUTHORIZED', 'authentication required');
      }
      res.writeHead(201, { location: `/v2/new/app/blobs/${BLOB_DIGEST}` });
      res.end();
    });
    const { c } = client(s, { credentials: { username: '', password: '', identityToken: 'refresh-123' } });
    assert.equal(await c.mountBlob('new/app', BLOB_DIGEST, 'busybox'), true);
    assert.equal(forms.length, 1);
    assert.equal(forms[0]!.get('grant_type'), 'refresh_token');
    assert.equal(forms[0]!.get('service'), 'svc');
    assert.deepEqual(forms[0]!.get('scope')!.split(' ').sort(), [
      'repository:busybox:pull',
      'repository:new/app:pull,push',
    ]);
    const mount = registryRequests(s).at(-1)!;
    assert.equal(queryOf(mount).get('mount'), BLOB_DIGEST);
    assert.equal(queryOf(mount).get('from'), 'busybox');
  });

  it('fetches a new token once the cached one expires', async () => {
    let issued = 0;
    const s: TestServer = await startServer(
      content((req, res) => {
        if (pathOf(req) === '/token') {
          issued++;
          json(res, 200, { token: `t${issued}`, expires_in: 1 });
          return true;
        }
        if (req.headers.authorization !== `Bearer t${issued}`) {
          res.setHeader('www-authenticate', `Bearer realm="${s.url}/token",service="svc"`);
          ociError(res, 401, 'UNAUTHORIZED', 'authentication required');
          return true;
        }
        return false;
      }),
    );
    const tokenCache = new Map();
    const { c } = client(s, { tokenCache });
    await c.blobExists('busybox', BLOB_DIGEST);
    await c.blobExists('busybox', BLOB_DIGEST);
    assert.equal(issued, 1, 'reused while fresh');
    for (const t of tokenCache.values()) t.expiresAt = Date.now() - 1;
    await c.blobExists('busybox', BLOB_DIGEST);
    assert.equal(issued, 2, 'renewed once expired');
    assert.equal(registryRequests(s).at(-1)!.headers.authorization, 'Bearer t2');
  });

  it('reports UNAUTHORIZED when the registry still says 401 with a token', async () => {
    const s: TestServer = await startServer((req, res) => {
      if (pathOf(req) === '/token') return json(res, 200, { token: 'useless' });
      res.setHeader('www-authenticate', `Bearer realm="${s.url}/token",service="svc"`);
      ociError(res, 401, 'UNAUTHORIZED', 'access to the requested resource is not authorized');
    });
    const { c } = client(s, { credentials: { username: 'u', password: 'p' } });
    await rejectsWith(
      c.getManifest('private/app', 'v1', ACCEPT),
      'UNAUTHORIZED',
      s.host,
      'private/app',
      (e) => {
        assert.match(e.message, /not authorized/);
        assert.match(e.hint!, new RegExp(`hutch login ${s.host}`));
      },
    );
    assert.equal(registryRequests(s).length, 2, 'one try without, one with the token: no loop');
  });

  it('reports a token service that answers garbage as BAD_RESPONSE', async () => {
    const s: TestServer = await startServer((req, res) => {
      if (pathOf(req) === '/token') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('<html>oops</html>');
      }
      res.setHeader('www-authenticate', `Bearer realm="${s.url}/token"`);
      ociError(res, 401, 'UNAUTHORIZED', 'authentication required');
    });
    const { c } = client(s);
    await rejectsWith(c.getManifest('busybox', 'latest', ACCEPT), 'BAD_RESPONSE', s.host, 'busybox', (e) =>
      assert.match(e.message, /token service .* did not answer JSON/),
    );
  });
});

describe('RegistryClient: error mapping', () => {
  it("maps 403 to DENIED with the registry's message", async () => {
    const s = await startServer((_req, res) =>
      ociError(res, 403, 'DENIED', 'requested access to the resource is denied'),
    );
    const { c } = client(s);
    await rejectsWith(
      c.putManifest('busybox', 'v1', MEDIA.ociManifest, MANIFEST),
      'DENIED',
      s.host,
      'busybox',
      (e) => {
        assert.match(e.message, /requested access to the resource is denied \(DENIED\)/);
        assert.match(e.hint!, /may push busybox/);
      },
    );
  });

  it('maps 404 to NOT_FOUND (manifest unknown, name unknown), or undefined/false for checks', async () => {
    const s = await startServer(content());
    const { c } = client(s);
    await rejectsWith(c.getManifest('busybox', 'nope', ACCEPT), 'NOT_FOUND', s.host, 'busybox:nope', (e) =>
      assert.match(e.message, /manifest unknown \(MANIFEST_UNKNOWN\)/),
    );
    await rejectsWith(c.listTags('ghost'), 'NOT_FOUND', s.host, 'ghost', (e) =>
      assert.match(e.message, /repository name not known to registry \(NAME_UNKNOWN\)/),
    );
    const missing = `sha256:${'0'.repeat(64)}`;
    await rejectsWith(c.getBlob('busybox', missing), 'NOT_FOUND', s.host, 'busybox', (e) =>
      assert.ok(e.message.includes(missing)),
    );
    assert.equal(await c.headManifest('busybox', 'nope', ACCEPT), undefined);
    assert.equal(await c.blobExists('busybox', missing), false);
    assert.deepEqual(await c.headManifest('busybox', 'latest', ACCEPT), {
      mediaType: MEDIA.ociManifest,
      digest: MANIFEST_DIGEST,
      size: MANIFEST.length,
    });
  });

  it('retries 429 after Retry-After, then succeeds', async () => {
    let n = 0;
    const s = await startServer(
      content((_req, res) => {
        if (n++ === 0) {
          res.setHeader('retry-after', '1');
          ociError(res, 429, 'TOOMANYREQUESTS', 'slow down');
          return true;
        }
        return false;
      }),
    );
    const { c, sleeps } = client(s);
    assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
    assert.deepEqual(sleeps, [1000], 'waited the Retry-After');
  });

  it('gives up on 429 with TOO_MANY_REQUESTS: after the tries, or at once when asked to wait too long', async () => {
    const s = await startServer((req, res) => {
      if (pathOf(req).includes('long')) res.setHeader('retry-after', '3600');
      ociError(res, 429, 'TOOMANYREQUESTS', 'you have reached your pull rate limit');
    });
    const { c, sleeps } = client(s);
    await rejectsWith(
      c.getManifest('busybox', 'latest', ACCEPT),
      'TOO_MANY_REQUESTS',
      s.host,
      'busybox',
      (e) => assert.match(e.message, /after 4 tries.*pull rate limit/),
    );
    assert.deepEqual(sleeps, [10, 20, 40], 'exponential backoff without Retry-After');
    assert.equal(registryRequests(s).length, 4);
    sleeps.length = 0;
    await rejectsWith(c.getManifest('long', 'latest', ACCEPT), 'TOO_MANY_REQUESTS', s.host, 'long');
    assert.deepEqual(sleeps, [], 'an hour is not waited for');
  });

  it('retries 5xx with exponential backoff, then succeeds', async () => {
    let n = 0;
    const s = await startServer(
      content((_req, res) => {
        if (n++ < 2) {
          res.writeHead(500);
          res.end('boom');
          return true;
        }
        return false;
      }),
    );
    const { c, sleeps } = client(s);
    assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
    assert.deepEqual(sleeps, [10, 20]);
  });

  it('gives up on persistent 5xx with REGISTRY_ERROR', async () => {
    const s = await startServer((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    const sleeps: number[] = [];
    const { c } = client(s, {
      retry: { tries: 3, baseDelayMs: 100, maxDelayMs: 150, sleep: async (ms) => void sleeps.push(ms) },
    });
    await rejectsWith(c.getBlob('busybox', BLOB_DIGEST), 'REGISTRY_ERROR', s.host, 'busybox', (e) =>
      assert.match(e.message, /answered 503 Service Unavailable 3 times/),
    );
    assert.deepEqual(sleeps, [100, 150], 'capped by maxDelayMs');
  });

  it('retries a reset connection', async () => {
    let n = 0;
    const s = await startServer(
      content((_req, res) => {
        if (n++ === 0) {
          res.socket?.destroy();
          return true;
        }
        return false;
      }),
    );
    const { c, sleeps } = client(s);
    assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
    assert.equal(sleeps.length, 1);
  });

  it('reports connection resets that go on as REGISTRY_ERROR, and a refused connection as REGISTRY_UNREACHABLE', async () => {
    const s = await startServer((_req, res) => void res.socket?.destroy());
    const { c } = client(s);
    await rejectsWith(c.getManifest('busybox', 'latest', ACCEPT), 'REGISTRY_ERROR', s.host, 'busybox', (e) =>
      assert.match(e.message, /connection to .* failed \(4 tries\)/),
    );
    const gone = s.host;
    await s.close();
    const { c: c2 } = client(gone);
    await rejectsWith(
      c2.getManifest('busybox', 'latest', ACCEPT),
      'REGISTRY_UNREACHABLE',
      gone,
      'busybox',
      (e) => assert.match(e.message, /ECONNREFUSED/),
    );
  });

  it('reports garbage where JSON was expected as BAD_RESPONSE', async () => {
    const s = await startServer((req, res) => {
      res.writeHead(200, {
        'content-type': pathOf(req).includes('manifests') ? MEDIA.ociManifest : 'application/json',
      });
      res.end('{"schemaVersion": 2, "config": ');
    });
    const { c } = client(s);
    await rejectsWith(
      c.getManifest('busybox', 'latest', ACCEPT),
      'BAD_RESPONSE',
      s.host,
      'busybox:latest',
      (e) => assert.match(e.message, /manifest is not valid JSON/),
    );
    await rejectsWith(c.listTags('busybox'), 'BAD_RESPONSE', s.host, 'busybox', (e) =>
      assert.match(e.message, /tag list is not valid JSON/),
    );
  });

  it('verifies a manifest fetched by digest, and reports the digest of one fetched by tag', async () => {
    const other = Buffer.from('{"schemaVersion":2,"mediaType":"x","config":{},"layers":[]}');
    const s = await startServer((req, res) => {
      if (pathOf(req).includes('/blobs/')) {
        res.writeHead(200, { 'content-length': 5 });
        return res.end('wrong');
      }
      res.writeHead(200, { 'content-type': MEDIA.dockerManifest });
      res.end(other);
    });
    const { c } = client(s);
    await rejectsWith(
      c.getManifest('busybox', MANIFEST_DIGEST, ACCEPT),
      'DIGEST_MISMATCH',
      s.host,
      'busybox',
      (e) => {
        assert.ok(e.message.includes(MANIFEST_DIGEST));
        assert.ok(e.message.includes(sha256(other)));
      },
    );
    const byTag = await c.getManifest('busybox', 'latest', ACCEPT);
    assert.equal(byTag.digest, sha256(other));
    assert.equal(byTag.mediaType, MEDIA.dockerManifest, 'Content-Type gives the media type');
    await rejectsWith(c.getBlobBytes('busybox', BLOB_DIGEST), 'DIGEST_MISMATCH', s.host, 'busybox');
  });

  it('refuses invalid names before sending anything', async () => {
    const s = await startServer(content());
    const { c } = client(s);
    const cases: [() => Promise<unknown>, string][] = [
      [() => c.getManifest('Busy Box', 'latest', ACCEPT), 'Busy Box'],
      [() => c.getManifest('busybox', '../../x', ACCEPT), 'busybox'],
      [() => c.getBlob('busybox', 'sha256:abc'), 'busybox'],
      [() => c.mountBlob('busybox', BLOB_DIGEST, 'a/../b'), 'a/../b'],
    ];
    for (const [call, name] of cases) await rejectsWith(call(), 'INVALID_REFERENCE', s.host, name);
    assert.equal(s.requests.length, 0);
  });
});

describe('RegistryClient: blobs, redirects and resume', () => {
  /** Serves BLOB honouring Range (206), ignoring it, or refusing it (416), as `mode` says. */
  function blobServer(mode: 'range' | 'ignore' | '416') {
    return (req: SeenRequest, res: ServerResponse) => {
      const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
      if (range && mode === '416') {
        res.writeHead(416, { 'content-range': `bytes */${BLOB.length}` });
        return res.end();
      }
      if (range && mode === 'range') {
        const start = Number(range[1]);
        res.writeHead(206, {
          'content-range': `bytes ${start}-${BLOB.length - 1}/${BLOB.length}`,
          'content-length': BLOB.length - start,
        });
        return res.end(BLOB.subarray(start));
      }
      res.writeHead(200, { 'content-length': BLOB.length });
      res.end(BLOB);
    };
  }

  it('follows a 307 to another host without forwarding Authorization, keeping Range', async () => {
    const storage = await startServer(blobServer('range'), '127.0.0.2');
    const s: TestServer = await startServer((req, res) => {
      if (pathOf(req) === '/token') return json(res, 200, { token: 'secret-token' });
      if (req.headers.authorization !== 'Bearer secret-token') {
        res.setHeader('www-authenticate', `Bearer realm="${s.url}/token",service="svc"`);
        return ociError(res, 401, 'UNAUTHORIZED', 'authentication required');
      }
      if (pathOf(req) === '/v2/busybox/blobs/relative') {
        res.writeHead(307, { location: `/v2/busybox/blobs/${BLOB_DIGEST}` });
        return res.end();
      }
      res.writeHead(307, { location: `${storage.url}/blobs/data?sig=abc` });
      res.end();
    });
    const { c } = client(s);
    const got = await c.getBlob('busybox', BLOB_DIGEST, { offset: 1234 });
    assert.equal(got.offset, 1234);
    assert.equal(got.size, BLOB.length);
    assert.deepEqual(await readAll(got.stream), BLOB.subarray(1234));
    assert.equal(storage.requests.length, 1);
    const at = storage.requests[0]!;
    assert.equal(at.url, '/blobs/data?sig=abc');
    assert.equal(at.headers.authorization, undefined, 'no Authorization to another host');
    assert.equal(at.headers.range, 'bytes=1234-');
    assert.ok(
      registryRequests(s).some((r) => r.headers.authorization === 'Bearer secret-token'),
      'the registry itself got the token',
    );
  });

  it('resumes from an offset with Range, and reports where the stream starts', async () => {
    const s = await startServer(blobServer('range'));
    const { c } = client(s);
    const whole = await c.getBlob('busybox', BLOB_DIGEST);
    assert.deepEqual({ offset: whole.offset, size: whole.size }, { offset: 0, size: BLOB.length });
    assert.equal(sha256(await readAll(whole.stream)), BLOB_DIGEST);
    const rest = await c.getBlob('busybox', BLOB_DIGEST, { offset: 150_000 });
    assert.deepEqual({ offset: rest.offset, size: rest.size }, { offset: 150_000, size: BLOB.length });
    const tail = await readAll(rest.stream);
    assert.equal(sha256(Buffer.concat([BLOB.subarray(0, 150_000), tail])), BLOB_DIGEST);
    assert.equal(s.requests.at(-1)!.headers.range, 'bytes=150000-');
  });

  it('falls back to the whole blob when the server ignores Range or refuses it', async () => {
    for (const mode of ['ignore', '416'] as const) {
      const s = await startServer(blobServer(mode));
      const { c } = client(s);
      const got = await c.getBlob('busybox', BLOB_DIGEST, { offset: 5000 });
      assert.equal(got.offset, 0, mode);
      assert.equal(got.size, BLOB.length);
      assert.deepEqual(await readAll(got.stream), BLOB);
    }
  });
});

describe('RegistryClient: pushing and listing', () => {
  it('uploads in chunks, mounts, puts a manifest and lists tags page by page', async () => {
    const uploads = new Map<string, Buffer>();
    const stored = new Map<string, Buffer>();
    let nextId = 0;
    const s = await startServer((req, res) => {
      const path = pathOf(req);
      const q = queryOf(req);
      if (req.method === 'POST' && path === '/v2/new/app/blobs/uploads/') {
        if (q.get('mount')) {
          if (q.get('from') === 'busybox' && q.get('mount') === BLOB_DIGEST) {
            res.writeHead(201, { location: `/v2/new/app/blobs/${BLOB_DIGEST}` });
            return res.end();
          }
        }
        const id = `u${nextId++}`;
        uploads.set(id, Buffer.alloc(0));
        res.writeHead(202, { location: `/v2/new/app/blobs/uploads/${id}?_state=s0`, range: '0-0' });
        return res.end();
      }
      const up = /^\/v2\/new\/app\/blobs\/uploads\/(u\d+)$/.exec(path);
      if (up && uploads.has(up[1]!)) {
        const id = up[1]!;
        const have = uploads.get(id)!;
        if (req.method === 'DELETE') {
          uploads.delete(id);
          res.writeHead(204);
          return res.end();
        }
        if (req.method === 'PATCH') {
          const cr = /^(\d+)-(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
          if (cr && Number(cr[1]) !== have.length)
            return ociError(res, 416, 'BLOB_UPLOAD_INVALID', 'bad range');
          const now = Buffer.concat([have, req.body]);
          uploads.set(id, now);
          res.writeHead(202, {
            location: `/v2/new/app/blobs/uploads/${id}?_state=s${now.length}`,
            range: `0-${now.length - 1}`,
          });
          return res.end();
        }
        if (req.method === 'PUT') {
          const all = Buffer.concat([have, req.body]);
          const digest = q.get('digest')!;
          if (sha256(all) !== digest)
            return ociError(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content');
          stored.set(digest, all);
          uploads.delete(id);
          res.writeHead(201, { 'docker-content-digest': digest, location: `/v2/new/app/blobs/${digest}` });
          return res.end();
        }
      }
      if (req.method === 'PUT' && path.startsWith('/v2/new/app/manifests/')) {
        stored.set(`manifest:${path.split('/').pop()}`, req.body);
        res.writeHead(201, { 'docker-content-digest': sha256(req.body) });
        return res.end();
      }
      if (path === '/v2/new/app/tags/list') {
        const all = ['a', 'b', 'c', 'd', 'e'];
        const last = q.get('last');
        const n = Number(q.get('n') ?? 100);
        const from = last ? all.indexOf(last) + 1 : 0;
        const page = all.slice(from, from + n);
        const headers: Record<string, string> = {};
        if (from + n < all.length)
          headers.link = `</v2/new/app/tags/list?n=${n}&last=${page.at(-1)}>; rel="next"`;
        return json(res, 200, { name: 'new/app', tags: page }, headers);
      }
      ociError(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
    });
    const { c } = client(s);

    let session = await c.startUpload('new/app');
    assert.equal(session.offset, 0);
    session = await c.uploadChunk(session, BLOB.subarray(0, 70_000));
    assert.equal(session.offset, 70_000);
    assert.match(session.location, /_state=s70000$/);
    session = await c.uploadChunk(session, BLOB.subarray(70_000, 150_000));
    assert.equal(session.offset, 150_000);
    assert.equal(await c.finishUpload(session, BLOB_DIGEST, BLOB.subarray(150_000)), BLOB_DIGEST);
    assert.deepEqual(stored.get(BLOB_DIGEST), BLOB);
    const patches = s.requests.filter((r) => r.method === 'PATCH');
    assert.deepEqual(
      patches.map((p) => p.headers['content-range']),
      ['0-69999', '70000-149999'],
    );

    // A wrong digest is reported as a mismatch.
    const bad = await c.startUpload('new/app');
    await rejectsWith(
      c.finishUpload(bad, MANIFEST_DIGEST, Buffer.from('x')),
      'DIGEST_MISMATCH',
      s.host,
      'new/app',
    );

    // Mounting: 201 is a mount; 202 is an upload the client cancels.
    assert.equal(await c.mountBlob('new/app', BLOB_DIGEST, 'busybox'), true);
    const before = uploads.size;
    assert.equal(await c.mountBlob('new/app', MANIFEST_DIGEST, 'busybox'), false);
    assert.equal(uploads.size, before, 'the upload opened instead of the mount was cancelled');
    assert.ok(s.requests.some((r) => r.method === 'DELETE'));

    // A whole blob from a stream factory.
    const small = Buffer.from('hello hutch');
    const streamed = await c.uploadBlob('new/app', sha256(small), () => ReadableFrom(small), small.length);
    assert.equal(streamed, 'uploaded');
    assert.deepEqual(stored.get(sha256(small)), small);

    assert.equal(await c.putManifest('new/app', 'v1', MEDIA.ociManifest, MANIFEST), MANIFEST_DIGEST);
    const put = s.requests.find((r) => r.method === 'PUT' && pathOf(r) === '/v2/new/app/manifests/v1')!;
    assert.equal(put.headers['content-type'], MEDIA.ociManifest);
    assert.deepEqual(put.body, MANIFEST);
    await rejectsWith(
      c.putManifest('new/app', BLOB_DIGEST, MEDIA.ociManifest, MANIFEST),
      'DIGEST_MISMATCH',
      s.host,
      'new/app',
    );

    assert.deepEqual(await c.listTags('new/app', { pageSize: 2 }), ['a', 'b', 'c', 'd', 'e']);
    assert.equal(s.requests.filter((r) => pathOf(r) === '/v2/new/app/tags/list').length, 3);
  });

  it('parses Link and Retry-After headers', () => {
    assert.equal(nextLink('</v2/x/tags/list?n=2&last=b>; rel="next"'), '/v2/x/tags/list?n=2&last=b');
    assert.equal(nextLink('<https://r/a>; rel="prev", <https://r/b>; rel="next"'), 'https://r/b');
    assert.equal(nextLink('<https://r/a>; rel="prev"'), undefined);
    assert.equal(nextLink(undefined), undefined);
    assert.equal(retryAfterMs('7'), 7000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6000);
    assert.equal(retryAfterMs('soon'), undefined);
  });
});

function ReadableFrom(b: Buffer) {
  return ReadableCtor.from([b]);
}
const ReadableCtor = process.getBuiltinModule('node:stream').Readable;

describe('RegistryClient: mirrors', () => {
  it('reads from a mirror first, and from the registry when the mirror lacks the content', async () => {
    const mirror = await startServer((req, res) => {
      if (pathOf(req) === '/v2/hub/busybox/manifests/latest') {
        res.writeHead(200, { 'content-type': MEDIA.ociManifest });
        return res.end(MANIFEST);
      }
      ociError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
    });
    const origin = await startServer(content());
    const { c } = client(origin, {
      settings: settings({ mirrors: { [origin.host]: [`http://${mirror.host}/hub`] } }),
    });
    assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
    assert.equal(registryRequests(origin).length, 0, 'the mirror answered');
    assert.equal((await c.getManifest('busybox', MANIFEST_DIGEST, ACCEPT)).digest, MANIFEST_DIGEST);
    assert.equal(registryRequests(origin).length, 1, 'the registry answered what the mirror lacks');
    assert.equal((await c.headManifest('busybox', MANIFEST_DIGEST, ACCEPT))?.digest, MANIFEST_DIGEST);
    // Writes never go to a mirror.
    assert.equal(await c.blobExists('busybox', BLOB_DIGEST), true);
    assert.equal(
      mirror.requests.filter((r) => r.method === 'HEAD' && pathOf(r).includes('/blobs/')).length,
      0,
    );
  });
});

/** A CONNECT proxy that sends each tunnel where `route` says (host:port → port on 127.0.0.1), or refuses it. */
async function startProxy(
  route: (target: string) => number | undefined,
): Promise<{ url: string; seen: string[]; server: Server }> {
  const server = createHttpServer((_req, res) => {
    res.writeHead(405);
    res.end();
  });
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    sockets.add(socket);
    seen.push(req.url ?? '');
    const port = route(req.url ?? '');
    if (port === undefined) {
      socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const upstream = connect(port, '127.0.0.1', () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxies.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}
const proxies: Server[] = [];
after(async () => {
  for (const p of proxies) {
    p.closeAllConnections();
    p.emit('close');
    await new Promise<void>((resolve) => p.close(() => resolve()));
  }
});

describe('RegistryClient: proxies', () => {
  it('goes through HTTP(S)_PROXY, except for NO_PROXY hosts and loopback', async () => {
    const s = await startServer(content());
    const port = Number(s.host.split(':')[1]);
    const proxy = await startProxy((target) => (target === 'registry.test:80' ? port : undefined));
    const env = { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url };
    const { c } = client('registry.test', { env, settings: settings({ insecure: ['registry.test'] }) });
    assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
    assert.deepEqual(
      proxy.seen,
      ['registry.test:443', 'registry.test:80'],
      'HTTPS tried first, then plain HTTP',
    );

    // Loopback never goes through the proxy.
    const { c: local } = client(s, { env });
    assert.equal((await local.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
    assert.equal(proxy.seen.length, 2);

    // NO_PROXY: straight to registry.test, which does not resolve (NXDOMAIN, or EAI_AGAIN without DNS).
    const { c: direct } = client('registry.test', {
      env: { ...env, NO_PROXY: 'example.com,.test' },
      settings: settings({ insecure: ['registry.test'] }),
    });
    await assert.rejects(direct.getManifest('busybox', 'latest', ACCEPT), (e: unknown) => {
      assert.ok(isHutchError(e));
      assert.ok(['REGISTRY_UNREACHABLE', 'REGISTRY_ERROR'].includes(e.code), e.message);
      assert.match(e.message, /registry\.test/);
      return true;
    });
    assert.equal(proxy.seen.length, 2);
  });
});

/** Whether openssl is there to make the certificates of the TLS tests. */
const openssl = spawnSync('openssl', ['version']).status === 0;

/** A CA-less self-signed certificate for `san` (e.g. DNS:secure.test), made with openssl; undefined without it. */
function makeCert(name: string, san: string): { cert: string; key: string } | undefined {
  const dir = join(tmp, `cert-${name}`);
  mkdirSync(dir, { recursive: true });
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=${san}`,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) return undefined;
  const { readFileSync } = process.getBuiltinModule('node:fs');
  return {
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
  };
}

async function startHttps(cert: { cert: string; key: string }, clientCa: string, address: string) {
  const peers: string[] = [];
  const handler = content();
  const server = createHttpsServer(
    { ...cert, requestCert: true, rejectUnauthorized: false, ca: clientCa },
    (req, res) => {
      const tlsSocket = req.socket as TLSSocket;
      const peer = tlsSocket.getPeerCertificate();
      peers.push(peer && 'subject' in peer && peer.subject ? String(peer.subject.CN) : '');
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        handler(
          { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) },
          res,
        ),
      );
    },
  );
  await new Promise<void>((resolve) => server.listen(0, address, () => resolve()));
  proxies.push(server as unknown as Server);
  return { port: (server.address() as AddressInfo).port, peers };
}

describe('RegistryClient: TLS from certs.d', () => {
  it(
    'trusts certs.d CAs and presents client.cert through a proxy tunnel',
    { skip: !openssl && 'openssl is not installed' },
    async () => {
      const server = makeCert('secure.test', 'DNS:secure.test')!;
      const clientCert = makeCert('hutch-client', 'DNS:hutch-client')!;
      const https = await startHttps(server, clientCert.cert, '127.0.0.1');
      const proxy = await startProxy((t) => (t === 'secure.test:443' ? https.port : undefined));
      const env = { HTTPS_PROXY: proxy.url };

      const { c: untrusting } = client('secure.test', { env });
      await rejectsWith(
        untrusting.getManifest('busybox', 'latest', ACCEPT),
        'TLS_ERROR',
        'secure.test',
        'busybox',
        (e) => assert.match(e.hint!, /certs\.d\/secure\.test\/ca\.crt/),
      );

      const certsD = join(tmp, 'certs.d');
      mkdirSync(join(certsD, 'secure.test'), { recursive: true });
      writeFileSync(join(certsD, 'secure.test/ca.crt'), server.cert);
      writeFileSync(join(certsD, 'secure.test/client.cert'), clientCert.cert);
      writeFileSync(join(certsD, 'secure.test/client.key'), clientCert.key);
      const { c } = client('secure.test', {
        env,
        settings: settings({ certDirs: [join(tmp, 'none'), certsD] }),
      });
      assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
      assert.equal(https.peers.at(-1), 'hutch-client', 'the client certificate was presented');
    },
  );

  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  it(
    'trusts certs.d CAs on a direct connection',
    { skip: (!openssl || !external) && 'needs openssl and a non-loopback IPv4 address' },
    async () => {
      const server = makeCert('direct', `IP:${external}`)!;
      const https = await startHttps(server, server.cert, external!);
      const host = `${external}:${https.port}`;
      // No proxy variables: the address is not loopback, so a proxy in the caller's environment would be used.
      const { c: untrusting } = client(host, { env: {} });
      await rejectsWith(untrusting.getManifest('busybox', 'latest', ACCEPT), 'TLS_ERROR', host, 'busybox');
      const certsD = join(tmp, 'certs.d-direct');
      mkdirSync(join(certsD, host), { recursive: true });
      writeFileSync(join(certsD, host, 'my-ca.crt'), server.cert);
      const { c } = client(host, { env: {}, settings: settings({ certDirs: [certsD] }) });
      assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
      assert.deepEqual(await c.ping(), { url: `https://${host}`, scheme: 'https', auth: 'none' });
    },
  );
});

describe('RegistryClient: remembered plain-HTTP endpoints', () => {
  /** A SchemeMemory in a Map, as the engine keeps one in files. */
  function memory() {
    const hosts = new Map<string, boolean>();
    return {
      hosts,
      plainHttp: (host: string) => hosts.get(host) === true,
      remember: (host: string, plain: boolean) => void hosts.set(host, plain),
    };
  }

  it('learns that a loopback registry speaks plain HTTP, then skips the TLS attempt', async () => {
    const s = await startServer(content());
    // A TLS handshake sent to a plain HTTP server is a client error there.
    let tlsAttempts = 0;
    s.server.on('clientError', (_e: Error, socket: Socket) => {
      tlsAttempts++;
      socket.destroy();
    });
    const schemes = memory();

    const { c: first } = client(s, { schemes });
    assert.equal((await first.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
    assert.equal(schemes.hosts.get(s.host), true, 'the failed HTTPS attempt is remembered');
    assert.equal(tlsAttempts, 1);

    const { c: second } = client(s, { schemes });
    assert.equal((await second.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
    assert.equal(tlsAttempts, 1, 'no TLS attempt the second time');
    assert.deepEqual(await second.ping(), { url: `http://${s.host}`, scheme: 'http', auth: 'none' });
  });

  it('asks a remembered plain-HTTP endpoint for the manifest at once, without a /v2/ check', async () => {
    const s = await startServer(content());
    let connections = 0;
    s.server.on('connection', () => connections++);
    const schemes = memory();
    schemes.hosts.set(s.host, true);
    const { c } = client(s, { schemes });
    assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
    assert.deepEqual(
      s.requests.map((r) => r.url),
      ['/v2/busybox/manifests/latest'],
    );
    assert.equal(connections, 1);
    assert.equal(schemes.hosts.get(s.host), true);
  });

  it('takes a 400 from a remembered endpoint that still speaks plain HTTP as its answer', async () => {
    const s = await startServer(
      content((req, res) => {
        if (!pathOf(req).includes('/manifests/bad')) return false;
        ociError(res, 400, 'MANIFEST_INVALID', 'manifest invalid');
        return true;
      }),
    );
    const schemes = memory();
    schemes.hosts.set(s.host, true);
    const { c } = client(s, { schemes });
    await assert.rejects(c.getManifest('busybox', 'bad', ACCEPT), /manifest invalid/);
    // The 400 made the client check the scheme, once; the registry still answers plain HTTP.
    assert.deepEqual(
      s.requests.map((r) => r.url),
      ['/v2/busybox/manifests/bad', '/v2/'],
    );
    assert.equal(schemes.hosts.get(s.host), true, 'still remembered as plain HTTP');
    assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
  });

  it('leaves a non-loopback registry that is not insecure on HTTPS whatever is remembered', async () => {
    const s = await startServer(content());
    const schemes = memory();
    schemes.hosts.set('registry.example', true);
    const { c } = client('registry.example', { schemes, env: {} });
    await assert.rejects(c.ping());
    assert.equal(s.requests.length, 0);
    assert.equal(schemes.hosts.get('registry.example'), true, 'never consulted, never changed');
  });

  it(
    'forgets the memory when the registry has turned to TLS',
    { skip: !openssl && 'openssl is not installed' },
    async () => {
      const cert = makeCert('turned', 'IP:127.0.0.1')!;
      const https = await startHttps(cert, cert.cert, '127.0.0.1');
      const host = `127.0.0.1:${https.port}`;
      const schemes = memory();
      schemes.hosts.set(host, true);
      const { c } = client(host, { schemes });
      assert.equal((await c.getManifest('busybox', 'latest', ACCEPT)).digest, MANIFEST_DIGEST);
      assert.deepEqual(await c.ping(), { url: `https://${host}`, scheme: 'https', auth: 'none' });
      assert.equal(schemes.hosts.get(host), false);
    },
  );
});
