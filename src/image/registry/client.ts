/**
 * A client for the OCI distribution API (docker registry v2), used by
 * `hutch pull`, `push` and `login`. One client per registry (and the
 * repositories of one image); it keeps its connections, the scheme each
 * endpoint speaks, the last authentication challenge and bearer tokens.
 *
 * Reads go to the registry's mirrors first, then to the registry; writes go
 * to the registry only. 429 and 5xx answers and dropped connections are
 * retried with backoff; every failure ends as a HutchError (errors.ts).
 */
import { request } from './undici-parts.ts';
import type { Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import { isHutchError } from '../../util/errors.ts';
import type { HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import type { Digest } from '../types.ts';
import { MEDIA } from '../types.ts';
import type { Credentials } from './auth.ts';
import { pickChallenge, parseWwwAuthenticate } from './challenge.ts';
import type { Challenge } from './challenge.ts';
import { canonicalRegistry, defaultRegistrySettings, endpointsFor } from './config.ts';
import type { Endpoint, RegistrySettings } from './config.ts';
import {
  badResponse,
  digestMismatch,
  isRetryableNetworkError,
  networkError,
  statusError,
  unauthorizedError,
} from './errors.ts';
import type { OpContext } from './errors.ts';
import {
  checkDigest,
  checkReference,
  checkRepository,
  computeDigest,
  digestAlgorithm,
  isDigestReference,
} from './names.ts';
import { Transport } from './transport.ts';

declare const HUTCH_VERSION: string;

type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type Headers = Record<string, string | string[] | undefined>;
type ResponseBody = Dispatcher.ResponseData['body'];

/** Credentials for a host (the registry's or a mirror's), e.g. from lookupCredentials. */
export type CredentialLookup = (
  host: string,
) => Credentials | undefined | Promise<(Credentials & { source?: string }) | undefined>;

export interface RetryOptions {
  /** Sends of one request, at most (default 4). */
  tries?: number;
  /** First backoff delay; doubles each try (default 500 ms). */
  baseDelayMs?: number;
  /** Longest backoff delay (default 8 s). */
  maxDelayMs?: number;
  /** A Retry-After longer than this is not waited for: the request fails at once (default 60 s). */
  maxRetryAfterMs?: number;
  /** How to wait (tests record the delays instead). */
  sleep?: (ms: number) => Promise<void>;
}

export interface CachedToken {
  token: string;
  /** Date.now() after which it is not used again. */
  expiresAt: number;
}

/** Bearer tokens by realm, service, user and scopes; may be shared between clients. */
export type TokenCache = Map<string, CachedToken>;

export interface RegistryClientOptions {
  /** host[:port] as in image references; Docker Hub as docker.io. */
  registry: string;
  /** The repository this client is mostly for (used where an operation names none, e.g. ping's messages). */
  repository?: string;
  settings?: RegistrySettings;
  /** For the registry itself; a function is asked for the registry and for each mirror host. */
  credentials?: (Credentials & { source?: string }) | CredentialLookup | undefined;
  retry?: RetryOptions;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Environment for proxy variables; default process.env. */
  env?: NodeJS.ProcessEnv;
  tokenCache?: TokenCache;
  userAgent?: string;
  /** What earlier commands learned of endpoints that speak plain HTTP only. */
  schemes?: SchemeMemory;
}

/**
 * Remembers which endpoints allowed plain HTTP answered only over it, so a
 * later command asks them over HTTP at once instead of first failing a TLS
 * handshake (which also loads Node's TLS: about 20 ms of every pull from a
 * loopback registry). Only ever consulted for endpoints allowed plain HTTP.
 */
export interface SchemeMemory {
  plainHttp(host: string): boolean;
  remember(host: string, plainHttp: boolean): void;
}

export interface ManifestResult {
  mediaType: string;
  /** The digest of `bytes` (in the reference's algorithm when it is a digest, else sha256). */
  digest: Digest;
  bytes: Buffer;
}

export interface ManifestHead {
  mediaType: string;
  /** From Docker-Content-Digest; undefined when the registry does not say. */
  digest: Digest | undefined;
  /** -1 when the registry does not say. */
  size: number;
}

export interface BlobResponse {
  /** The blob's bytes from `offset` on. Consume or destroy it: it holds a connection. */
  stream: Readable;
  /** The whole blob's size, or -1 when the registry does not say. */
  size: number;
  /** Where `stream` starts: the offset asked for, or 0 when the registry ignored the Range. */
  offset: number;
}

export interface UploadSession {
  repository: string;
  /** Absolute URL of the upload (changes after each chunk). */
  location: string;
  /** Bytes the registry holds so far. */
  offset: number;
}

export interface PingResult {
  /** e.g. https://registry-1.docker.io */
  url: string;
  scheme: 'https' | 'http';
  /** What the registry asks for: nothing, a bearer token or basic credentials. */
  auth: 'none' | 'bearer' | 'basic';
}

/** A request body: bytes, a stream (sent once, never retried) or a function making a fresh stream per try. */
export type Body = Buffer | Readable | (() => Readable);

interface EndpointState {
  ep: Endpoint;
  base: Promise<string> | undefined;
  /** The base is plain HTTP as remembered, not yet confirmed by an answer (see #sendUnconfirmed). */
  unconfirmed?: boolean;
  challenge: Challenge | undefined;
  creds: Promise<(Credentials & { source?: string }) | undefined> | undefined;
}

interface Call {
  st: EndpointState;
  method: HttpMethod;
  url: URL;
  headers: Record<string, string>;
  body?: Body | undefined;
  /** Token scopes the request needs. */
  scopes: string[];
  /** Answer 401 challenges (false: return the 401). */
  auth: boolean;
  /** Follow redirects (GET and HEAD only). */
  redirects: boolean;
  ctx: OpContext;
}

interface Response {
  status: number;
  statusText: string;
  headers: Headers;
  body: ResponseBody;
  url: URL;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;
const MAX_REDIRECTS = 10;
const REDIRECT = new Set([301, 302, 303, 307, 308]);

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function isReplayable(body: Body | undefined): boolean {
  return body === undefined || Buffer.isBuffer(body) || typeof body === 'function';
}

function bodyFor(body: Body | undefined): Buffer | Readable | undefined {
  return typeof body === 'function' ? body() : body;
}

async function drain(body: ResponseBody): Promise<void> {
  try {
    await body.dump({ limit: 256 * 1024 });
  } catch {
    // The connection is dropped instead of reused; nothing else to do.
  }
}

/** Reads a body up to `limit` bytes; undefined when it is longer (the rest is discarded). */
async function readLimited(body: ResponseBody, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, size);
}

async function errorText(body: ResponseBody): Promise<string> {
  try {
    const buf = await readLimited(body, MAX_ERROR_BODY);
    return buf ? buf.toString('utf8') : '';
  } catch {
    return '';
  }
}

function mediaTypeOf(contentType: string | undefined): string | undefined {
  const t = contentType?.split(';')[0]?.trim().toLowerCase();
  return t || undefined;
}

/** The `rel="next"` target of a Link header. */
export function nextLink(link: string | string[] | undefined): string | undefined {
  for (const value of Array.isArray(link) ? link : link ? [link] : []) {
    for (const part of value.split(/,(?=\s*<)/)) {
      const m = /^\s*<([^>]*)>(.*)$/.exec(part);
      if (m && /;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/i.test(m[2]!)) return m[1];
    }
  }
  return undefined;
}

/** Retry-After in milliseconds (seconds or an HTTP date); undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

function userAgent(): string {
  return `hutch/${typeof HUTCH_VERSION === 'string' ? HUTCH_VERSION : 'dev'}`;
}

/** How much of a response body may wait, read from the socket, for its consumer. */
const RESPONSE_BUFFER = 4 << 20;

export class RegistryClient {
  /** The registry as the user named it. */
  readonly registry: string;
  readonly repository: string | undefined;
  readonly settings: RegistrySettings;
  /** The keep-alive connections of this client (one undici dispatcher per TLS setup and proxy use). */
  readonly transport: Transport;
  readonly #credentials: RegistryClientOptions['credentials'];
  readonly #retry: Required<RetryOptions>;
  readonly #tokens: TokenCache;
  readonly #pendingTokens = new Map<string, Promise<CachedToken>>();
  readonly #states: EndpointState[];
  readonly #userAgent: string;
  readonly #schemes: SchemeMemory | undefined;

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry;
    this.repository = opts.repository;
    this.settings = opts.settings ?? defaultRegistrySettings();
    this.#credentials = opts.credentials;
    this.#retry = {
      tries: Math.max(1, opts.retry?.tries ?? 4),
      baseDelayMs: opts.retry?.baseDelayMs ?? 500,
      maxDelayMs: opts.retry?.maxDelayMs ?? 8_000,
      maxRetryAfterMs: opts.retry?.maxRetryAfterMs ?? 60_000,
      sleep: opts.retry?.sleep ?? defaultSleep,
    };
    this.#tokens = opts.tokenCache ?? new Map();
    this.#userAgent = opts.userAgent ?? userAgent();
    this.#schemes = opts.schemes;
    this.transport = new Transport({
      certDirs: this.settings.certDirs,
      ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
      ...(opts.headersTimeoutMs !== undefined ? { headersTimeoutMs: opts.headersTimeoutMs } : {}),
      ...(opts.bodyTimeoutMs !== undefined ? { bodyTimeoutMs: opts.bodyTimeoutMs } : {}),
      ...(opts.env !== undefined ? { env: opts.env } : {}),
    });
    this.#states = endpointsFor(this.registry, this.settings).map((ep) => ({
      ep,
      base: undefined,
      challenge: undefined,
      creds: undefined,
    }));
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    await this.transport.close();
  }

  // ---- operations ----------------------------------------------------------

  /**
   * Checks that the registry answers the API. With `authenticate`, also
   * proves the credentials (as `login` does): UNAUTHORIZED when they are refused.
   */
  async ping(opts: { authenticate?: boolean } = {}): Promise<PingResult> {
    const st = this.#primary();
    const repository = this.repository ?? '';
    const ctx = this.#ctx(
      st,
      `reach registry ${this.registry}${repository ? ` for ${repository}` : ''}`,
      repository,
      'pull',
    );
    const base = await this.#base(st);
    const c = this.#newCall(st, 'GET', new URL('/v2/', base), ctx, { auth: opts.authenticate === true });
    const res = await this.#send(c);
    const auth: PingResult['auth'] =
      st.challenge?.scheme === 'bearer' ? 'bearer' : st.challenge?.scheme === 'basic' ? 'basic' : 'none';
    if (res.status === 200) {
      await drain(res.body);
      return { url: base, scheme: base.startsWith('https:') ? 'https' : 'http', auth };
    }
    if (res.status === 401 && !opts.authenticate) {
      await drain(res.body);
      const ch = pickChallenge(parseWwwAuthenticate(res.headers['www-authenticate']));
      if (ch) st.challenge = ch;
      return {
        url: base,
        scheme: base.startsWith('https:') ? 'https' : 'http',
        auth: ch?.scheme === 'basic' ? 'basic' : 'bearer',
      };
    }
    throw await this.#statusFailure(c, res);
  }

  /**
   * Fetches a manifest (or index) by tag or digest. Verifies the bytes when
   * `reference` is a digest (DIGEST_MISMATCH) and always reports their digest.
   */
  async getManifest(repo: string, reference: string, accept: string[]): Promise<ManifestResult> {
    checkRepository(this.registry, repo);
    checkReference(this.registry, repo, reference);
    return this.#onRead(async (st) => {
      const ctx = this.#ctx(st, `fetch manifest ${this.#refName(repo, reference)}`, repo, 'pull');
      const c = await this.#repoCall(st, 'GET', repo, `manifests/${reference}`, ctx, 'pull');
      c.headers.accept = accept.join(', ');
      const res = await this.#send(c);
      if (res.status !== 200) throw await this.#statusFailure(c, res);
      const bytes = await readLimited(res.body, MAX_MANIFEST_BYTES);
      if (!bytes) throw badResponse(ctx, `the manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
      const algorithm = isDigestReference(reference) ? digestAlgorithm(reference) : 'sha256';
      const digest = computeDigest(bytes, algorithm);
      if (isDigestReference(reference) && digest !== reference) throw digestMismatch(ctx, reference, digest);
      let parsed: unknown;
      try {
        parsed = JSON.parse(bytes.toString('utf8'));
      } catch (e) {
        throw badResponse(ctx, `the manifest is not valid JSON (${(e as Error).message})`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw badResponse(ctx, 'the manifest is not a JSON object');
      }
      return { mediaType: this.#manifestType(res.headers, parsed), digest, bytes };
    });
  }

  /** A manifest's media type, digest and size without its body; undefined when the registry has none. */
  async headManifest(repo: string, reference: string, accept: string[]): Promise<ManifestHead | undefined> {
    checkRepository(this.registry, repo);
    checkReference(this.registry, repo, reference);
    return this.#onRead(async (st) => {
      const ctx = this.#ctx(st, `check manifest ${this.#refName(repo, reference)}`, repo, 'pull');
      const c = await this.#repoCall(st, 'HEAD', repo, `manifests/${reference}`, ctx, 'pull');
      c.headers.accept = accept.join(', ');
      const res = await this.#send(c);
      await drain(res.body);
      // A mirror's 404 is not the last word: the registry itself is asked next.
      if (res.status === 404 && !st.ep.mirror) return undefined;
      if (res.status !== 200) throw await this.#statusFailure(c, res);
      const digest = header(res.headers, 'docker-content-digest');
      const length = Number(header(res.headers, 'content-length'));
      return {
        mediaType: mediaTypeOf(header(res.headers, 'content-type')) ?? MEDIA.ociManifest,
        digest: digest || undefined,
        size: Number.isFinite(length) ? length : -1,
      };
    });
  }

  /**
   * Streams a blob. With `offset` > 0 asks for the rest from there
   * (`Range: bytes=N-`); when the registry ignores the Range the whole blob
   * comes back and `offset` in the answer is 0. The caller verifies the digest.
   */
  async getBlob(repo: string, digest: Digest, opts: { offset?: number } = {}): Promise<BlobResponse> {
    checkRepository(this.registry, repo);
    checkDigest(this.registry, repo, digest);
    const wanted = Math.max(0, Math.floor(opts.offset ?? 0));
    return this.#onRead(async (st) => {
      const ctx = this.#ctx(st, `fetch blob ${digest} of ${this.registry}/${repo}`, repo, 'pull');
      let offset = wanted;
      for (;;) {
        const c = await this.#repoCall(st, 'GET', repo, `blobs/${digest}`, ctx, 'pull');
        if (offset > 0) c.headers.range = `bytes=${offset}-`;
        const res = await this.#send(c);
        if (res.status === 416 && offset > 0) {
          // The registry cannot serve that range (the offset may be past the end): start over.
          await drain(res.body);
          offset = 0;
          continue;
        }
        if (res.status === 206) {
          const range = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(header(res.headers, 'content-range') ?? '');
          if (!range) {
            res.body.destroy();
            throw badResponse(
              ctx,
              `a partial answer without a usable Content-Range ("${header(res.headers, 'content-range') ?? ''}")`,
            );
          }
          if (Number(range[1]) !== offset) {
            res.body.destroy();
            throw badResponse(ctx, `asked for bytes from ${offset}, got a range starting at ${range[1]}`);
          }
          const size = range[3] === '*' ? -1 : Number(range[3]);
          return { stream: res.body, size, offset };
        }
        if (res.status === 200) {
          const length = Number(header(res.headers, 'content-length'));
          return { stream: res.body, size: Number.isFinite(length) && length >= 0 ? length : -1, offset: 0 };
        }
        throw await this.#statusFailure(c, res);
      }
    });
  }

  /** A whole (small) blob in memory, verified against its digest: for configs. */
  async getBlobBytes(repo: string, digest: Digest, maxBytes = 64 * 1024 * 1024): Promise<Buffer> {
    const blob = await this.getBlob(repo, digest);
    const ctx = this.#ctx(this.#primary(), `fetch blob ${digest} of ${this.registry}/${repo}`, repo, 'pull');
    if (blob.size > maxBytes) {
      blob.stream.destroy();
      throw badResponse(ctx, `the blob is ${blob.size} bytes, more than the ${maxBytes} expected`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of blob.stream) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size > maxBytes) {
        blob.stream.destroy();
        throw badResponse(ctx, `the blob is more than the ${maxBytes} bytes expected`);
      }
      chunks.push(buf);
    }
    const bytes = Buffer.concat(chunks, size);
    const actual = computeDigest(bytes, digestAlgorithm(digest));
    if (actual !== digest) throw digestMismatch(ctx, digest, actual);
    return bytes;
  }

  /** Whether the registry holds the blob in `repo`. */
  async blobExists(repo: string, digest: Digest): Promise<boolean> {
    checkRepository(this.registry, repo);
    checkDigest(this.registry, repo, digest);
    const st = this.#primary();
    const ctx = this.#ctx(st, `check blob ${digest} of ${this.registry}/${repo}`, repo, 'pull');
    const c = await this.#repoCall(st, 'HEAD', repo, `blobs/${digest}`, ctx, 'pull');
    const res = await this.#send(c);
    if (res.status !== 200 && res.status !== 404) throw await this.#statusFailure(c, res);
    await drain(res.body);
    return res.status === 200;
  }

  /** Opens a blob upload in `repo`. */
  async startUpload(repo: string): Promise<UploadSession> {
    checkRepository(this.registry, repo);
    const st = this.#primary();
    const ctx = this.#ctx(st, `start an upload to ${this.registry}/${repo}`, repo, 'push');
    const c = await this.#repoCall(st, 'POST', repo, 'blobs/uploads/', ctx, 'pull,push');
    c.headers['content-length'] = '0';
    const res = await this.#send(c);
    if (res.status !== 202) throw await this.#statusFailure(c, res);
    await drain(res.body);
    return { repository: repo, location: this.#location(ctx, res), offset: 0 };
  }

  /**
   * Sends the next chunk of an upload (PATCH). With a known size (always for
   * a Buffer) it says where the chunk belongs (Content-Range).
   */
  async uploadChunk(session: UploadSession, data: Body, size?: number): Promise<UploadSession> {
    const repo = session.repository;
    const st = this.#primary();
    const ctx = this.#ctx(st, `upload to ${this.registry}/${repo}`, repo, 'push');
    const length = Buffer.isBuffer(data) ? data.length : size;
    if (length === 0) return session;
    const c = this.#newCall(st, 'PATCH', new URL(session.location), ctx, {
      scopes: [this.#scope(st, repo, 'pull,push')],
    });
    c.body = data;
    c.headers['content-type'] = 'application/octet-stream';
    if (length !== undefined) {
      c.headers['content-length'] = String(length);
      c.headers['content-range'] = `${session.offset}-${session.offset + length - 1}`;
    }
    const res = await this.#send(c);
    if (res.status !== 202) throw await this.#statusFailure(c, res);
    await drain(res.body);
    const range = /^(?:bytes=)?0-(\d+)$/.exec(header(res.headers, 'range') ?? '');
    const offset = range ? Number(range[1]) + 1 : session.offset + (length ?? 0);
    return { repository: repo, location: this.#location(ctx, res), offset };
  }

  /** Completes an upload as `digest` (PUT), sending `data` as the last part if given. */
  async finishUpload(session: UploadSession, digest: Digest, data?: Body, size?: number): Promise<Digest> {
    const repo = session.repository;
    checkDigest(this.registry, repo, digest);
    const st = this.#primary();
    const ctx = this.#ctx(st, `finish the upload of ${digest} to ${this.registry}/${repo}`, repo, 'push');
    const url = new URL(session.location);
    url.searchParams.set('digest', digest);
    const c = this.#newCall(st, 'PUT', url, ctx, { scopes: [this.#scope(st, repo, 'pull,push')] });
    const length = data === undefined ? 0 : Buffer.isBuffer(data) ? data.length : size;
    if (data !== undefined) {
      c.body = data;
      c.headers['content-type'] = 'application/octet-stream';
    }
    if (length !== undefined) c.headers['content-length'] = String(length);
    const res = await this.#send(c);
    if (res.status !== 201 && res.status !== 204) throw await this.#statusFailure(c, res);
    await drain(res.body);
    const said = header(res.headers, 'docker-content-digest');
    if (said && said !== digest) throw digestMismatch(ctx, digest, said);
    return digest;
  }

  /** Abandons an upload; quiet when the registry already forgot it. */
  async cancelUpload(session: UploadSession): Promise<void> {
    const repo = session.repository;
    const st = this.#primary();
    const ctx = this.#ctx(st, `cancel an upload to ${this.registry}/${repo}`, repo, 'push');
    const c = this.#newCall(st, 'DELETE', new URL(session.location), ctx, {
      scopes: [this.#scope(st, repo, 'pull,push')],
    });
    const res = await this.#send(c);
    if (res.status >= 300 && res.status !== 404) throw await this.#statusFailure(c, res);
    await drain(res.body);
  }

  /**
   * Uploads a whole blob unless the registry has it: `exists`, `mounted`
   * (from one of `mountFrom`, repositories of the same registry) or `uploaded`.
   */
  async uploadBlob(
    repo: string,
    digest: Digest,
    data: Buffer | (() => Readable),
    size: number,
    opts: { mountFrom?: string[] } = {},
  ): Promise<'exists' | 'mounted' | 'uploaded'> {
    if (await this.blobExists(repo, digest)) return 'exists';
    for (const from of opts.mountFrom ?? []) {
      if (from !== repo && (await this.mountBlob(repo, digest, from))) return 'mounted';
    }
    const session = await this.startUpload(repo);
    await this.finishUpload(session, digest, data, size);
    return 'uploaded';
  }

  /**
   * Mounts a blob from another repository of the same registry. False when
   * the registry started an ordinary upload instead (that upload is cancelled).
   */
  async mountBlob(repo: string, digest: Digest, fromRepo: string): Promise<boolean> {
    checkRepository(this.registry, repo);
    checkRepository(this.registry, fromRepo);
    checkDigest(this.registry, repo, digest);
    const st = this.#primary();
    const ctx = this.#ctx(
      st,
      `mount blob ${digest} from ${fromRepo} into ${this.registry}/${repo}`,
      repo,
      'push',
    );
    const c = await this.#repoCall(st, 'POST', repo, 'blobs/uploads/', ctx, 'pull,push');
    c.url.searchParams.set('mount', digest);
    c.url.searchParams.set('from', this.#repoPath(st, fromRepo));
    c.scopes.push(this.#scope(st, fromRepo, 'pull'));
    c.headers['content-length'] = '0';
    const res = await this.#send(c);
    if (res.status !== 201 && res.status !== 202) throw await this.#statusFailure(c, res);
    await drain(res.body);
    if (res.status === 201) return true;
    // 202: the registry opened an ordinary upload instead; it is not wanted.
    const location = header(res.headers, 'location');
    if (location) {
      const session = { repository: repo, location: new URL(location, res.url).href, offset: 0 };
      await this.cancelUpload(session).catch((e: unknown) =>
        log.debug(`cancelling the upload the registry opened instead of a mount: ${(e as Error).message}`),
      );
    }
    return false;
  }

  /** Stores a manifest under a tag or its digest; returns its digest. */
  async putManifest(repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<Digest> {
    checkRepository(this.registry, repo);
    checkReference(this.registry, repo, reference);
    const st = this.#primary();
    const ctx = this.#ctx(st, `push manifest ${this.#refName(repo, reference)}`, repo, 'push');
    const algorithm = isDigestReference(reference) ? digestAlgorithm(reference) : 'sha256';
    const digest = computeDigest(bytes, algorithm);
    if (isDigestReference(reference) && digest !== reference) throw digestMismatch(ctx, reference, digest);
    const c = await this.#repoCall(st, 'PUT', repo, `manifests/${reference}`, ctx, 'pull,push');
    c.body = bytes;
    c.headers['content-type'] = mediaType;
    const res = await this.#send(c);
    if (res.status !== 201 && res.status !== 200 && res.status !== 202)
      throw await this.#statusFailure(c, res);
    await drain(res.body);
    const said = header(res.headers, 'docker-content-digest');
    if (said && said.startsWith(`${algorithm}:`) && said !== digest) throw digestMismatch(ctx, digest, said);
    return digest;
  }

  /** Every tag of `repo`, following Link pagination. */
  async listTags(repo: string, opts: { pageSize?: number } = {}): Promise<string[]> {
    checkRepository(this.registry, repo);
    const st = this.#primary();
    const ctx = this.#ctx(st, `list the tags of ${this.registry}/${repo}`, repo, 'pull');
    const tags: string[] = [];
    const first = await this.#repoCall(st, 'GET', repo, 'tags/list', ctx, 'pull');
    if (opts.pageSize) first.url.searchParams.set('n', String(opts.pageSize));
    let url: URL | undefined = first.url;
    const seen = new Set<string>();
    while (url) {
      if (seen.has(url.href) || seen.size > 10_000)
        throw badResponse(ctx, `the tag list pages loop (${url.href})`);
      seen.add(url.href);
      const c = this.#newCall(st, 'GET', url, ctx, { scopes: first.scopes });
      const res = await this.#send(c);
      if (res.status !== 200) throw await this.#statusFailure(c, res);
      const text = await readLimited(res.body, 16 * 1024 * 1024);
      if (!text) throw badResponse(ctx, 'a tag list page is larger than 16 MiB');
      let page: { tags?: unknown };
      try {
        page = JSON.parse(text.toString('utf8')) as { tags?: unknown };
      } catch (e) {
        throw badResponse(ctx, `the tag list is not valid JSON (${(e as Error).message})`);
      }
      if (typeof page !== 'object' || page === null)
        throw badResponse(ctx, 'the tag list is not a JSON object');
      if (page.tags !== null && page.tags !== undefined) {
        if (!Array.isArray(page.tags) || !page.tags.every((t) => typeof t === 'string')) {
          throw badResponse(ctx, 'the tag list\'s "tags" is not a list of strings');
        }
        tags.push(...(page.tags as string[]));
      }
      const next = nextLink(res.headers.link);
      url = next ? new URL(next, res.url) : undefined;
    }
    return tags;
  }

  // ---- endpoints, names ------------------------------------------------------

  #primary(): EndpointState {
    return this.#states[this.#states.length - 1]!;
  }

  /** Runs a read on the mirrors in turn, then the registry; a mirror's failure moves on to the next. */
  async #onRead<T>(fn: (st: EndpointState) => Promise<T>): Promise<T> {
    for (const st of this.#states) {
      if (!st.ep.mirror) return fn(st);
      try {
        return await fn(st);
      } catch (e) {
        log.debug(
          `mirror ${st.ep.host} of ${this.registry} failed, trying the next: ${(e as Error).message}`,
        );
      }
    }
    /* c8 ignore next */
    throw new Error('unreachable: the registry itself is always the last endpoint');
  }

  #ctx(st: EndpointState, what: string, repository: string, action: 'pull' | 'push'): OpContext {
    return {
      what,
      registry: this.registry,
      repository: repository || this.repository || '',
      action,
      mirror: st.ep.mirror ? st.ep.host : undefined,
    };
  }

  #refName(repo: string, reference: string): string {
    return `${this.registry}/${repo}${isDigestReference(reference) ? '@' : ':'}${reference}`;
  }

  #repoPath(st: EndpointState, repo: string): string {
    return st.ep.pathPrefix ? `${st.ep.pathPrefix}/${repo}` : repo;
  }

  #scope(st: EndpointState, repo: string, actions: string): string {
    return `repository:${this.#repoPath(st, repo)}:${actions}`;
  }

  async #repoCall(
    st: EndpointState,
    method: HttpMethod,
    repo: string,
    path: string,
    ctx: OpContext,
    actions: string,
  ): Promise<Call> {
    const base = await this.#base(st);
    const url = new URL(`/v2/${this.#repoPath(st, repo)}/${path}`, base);
    return this.#newCall(st, method, url, ctx, { scopes: [this.#scope(st, repo, actions)] });
  }

  #newCall(
    st: EndpointState,
    method: HttpMethod,
    url: URL,
    ctx: OpContext,
    opts: { scopes?: string[]; auth?: boolean } = {},
  ): Call {
    return {
      st,
      method,
      url,
      headers: { 'user-agent': this.#userAgent },
      scopes: opts.scopes ?? [],
      auth: opts.auth ?? true,
      redirects: method === 'GET' || method === 'HEAD',
      ctx,
    };
  }

  #location(ctx: OpContext, res: Response): string {
    const location = header(res.headers, 'location');
    if (!location) throw badResponse(ctx, 'an upload answer without a Location');
    return new URL(location, res.url).href;
  }

  #manifestType(headers: Headers, parsed: object): string {
    const fromHeader = mediaTypeOf(header(headers, 'content-type'));
    if (
      fromHeader &&
      fromHeader !== 'application/json' &&
      fromHeader !== 'text/plain' &&
      fromHeader !== 'application/octet-stream'
    ) {
      return fromHeader;
    }
    const m = parsed as {
      mediaType?: unknown;
      schemaVersion?: unknown;
      signatures?: unknown;
      manifests?: unknown;
    };
    if (typeof m.mediaType === 'string' && m.mediaType) return m.mediaType;
    if (m.schemaVersion === 1) return m.signatures ? MEDIA.dockerSchema1Signed : MEDIA.dockerSchema1;
    return Array.isArray(m.manifests) ? MEDIA.ociIndex : MEDIA.ociManifest;
  }

  /**
   * The endpoint's base URL. An endpoint allowed plain HTTP is tried over
   * HTTPS first (TLS unverified), then over HTTP when HTTPS fails, as docker does.
   */
  #base(st: EndpointState): Promise<string> {
    st.base ??= this.#resolveBase(st);
    return st.base;
  }

  async #resolveBase(st: EndpointState, recheck = false): Promise<string> {
    const { ep } = st;
    if (ep.scheme) return `${ep.scheme}://${ep.host}`;
    const https = `https://${ep.host}`;
    if (!ep.insecure) return https;
    const http = `http://${ep.host}`;
    if (!recheck && this.#schemes?.plainHttp(ep.host)) {
      // Taken on trust: the first request checks it (#sendUnconfirmed).
      st.unconfirmed = true;
      return http;
    }
    try {
      await this.#getV2(https, ep.host);
      return https;
    } catch (e) {
      log.debug(`${ep.host} does not speak HTTPS (${(e as Error).message}); using plain HTTP`);
      this.#schemes?.remember(ep.host, true);
      return http;
    }
  }

  /**
   * The first request to an endpoint remembered as plain HTTP goes out at
   * once: no /v2/ check first, one round trip to the registry less for every
   * command. A registry turned to TLS since answers a plain request with 400
   * ("HTTP request to an HTTPS server") or drops it; only then is /v2/
   * asked. Still plain, the answer stands (the registry meant its 400);
   * turned to TLS, the memory goes and the request is sent again to the base
   * found anew.
   */
  async #sendUnconfirmed(c: Call): Promise<Response> {
    let res: Response | undefined;
    try {
      res = await this.#attempt(c);
    } catch (e) {
      if (isHutchError(e)) throw e;
      // A network failure: below, the endpoint is checked, then the call sent as any other.
    }
    if (res && res.status !== 400) {
      c.st.unconfirmed = false;
      if (res.status !== 429 && res.status < 500) return res;
      await drain(res.body); // retried as any answer of its kind
      return this.#send(c);
    }
    if (await this.#stillPlain(c.st)) {
      if (res) return res;
      return this.#send(c); // a network failure of its own: retried as any
    }
    if (res) await drain(res.body);
    await this.#rebase(c);
    return this.#send(c);
  }

  /** Asks /v2/ over plain HTTP whether the endpoint still answers it; forgets the memory if not. */
  async #stillPlain(st: EndpointState): Promise<boolean> {
    st.unconfirmed = false;
    const { host } = st.ep;
    const status = await this.#getV2(`http://${host}`, host).catch((e: unknown) => {
      log.debug(`${host} no longer answers plain HTTP (${(e as Error).message}); trying HTTPS`);
      return 400;
    });
    if (status !== 400) return true;
    this.#schemes?.remember(host, false);
    return false;
  }

  /** The endpoint's base is found anew (HTTPS first), and the call sent there. */
  async #rebase(c: Call): Promise<void> {
    c.st.base = this.#resolveBase(c.st, true);
    const base = await c.st.base;
    c.url = new URL(`${c.url.pathname}${c.url.search}`, base);
  }

  /** GET /v2/ at `base`, TLS unverified: the answer's status; network failures throw. */
  async #getV2(base: string, host: string): Promise<number> {
    const url = new URL('/v2/', base);
    const res = await request(url, {
      method: 'GET',
      headers: { 'user-agent': this.#userAgent },
      dispatcher: this.transport.dispatcherFor(url, { tlsHost: host, insecure: true }),
    });
    await drain(res.body);
    // undici frees the connection for the next request a turn of the event loop
    // after the body ends: without this wait, the request that always follows
    // (the manifest) opened a second connection to the registry.
    await new Promise((resolve) => setImmediate(resolve));
    return res.statusCode;
  }

  // ---- sending ---------------------------------------------------------------

  async #credsFor(st: EndpointState): Promise<(Credentials & { source?: string }) | undefined> {
    st.creds ??= (async () => {
      const c = this.#credentials;
      if (typeof c === 'function')
        return (await c(canonicalRegistry(st.ep.mirror ? st.ep.host : this.registry))) ?? undefined;
      // Plain credentials are the registry's own, never sent to a mirror.
      return st.ep.mirror ? undefined : c;
    })();
    return st.creds;
  }

  /**
   * Sends a call with retries: dropped connections, 429 (honouring
   * Retry-After) and 5xx are tried again with exponential backoff. The final
   * answer is returned whatever its status; network failures throw.
   */
  async #send(c: Call): Promise<Response> {
    if (c.st.unconfirmed) {
      if (isReplayable(c.body)) return this.#sendUnconfirmed(c);
      if (!(await this.#stillPlain(c.st))) await this.#rebase(c);
    }
    const { tries, baseDelayMs, maxDelayMs, maxRetryAfterMs, sleep } = this.#retry;
    const canRetry = isReplayable(c.body);
    for (let attempt = 1; ; attempt++) {
      c.ctx.tries = attempt;
      let res: Response;
      try {
        res = await this.#attempt(c);
      } catch (e) {
        if (isHutchError(e)) throw e;
        if (canRetry && attempt < tries && isRetryableNetworkError(e)) {
          const delay = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
          log.debug(`${c.method} ${c.url.href}: ${(e as Error).message}; retrying in ${delay} ms`);
          await sleep(delay);
          continue;
        }
        throw networkError(c.ctx, c.url.host, e);
      }
      const transient = res.status === 429 || (res.status >= 500 && res.status !== 501 && res.status !== 505);
      if (!transient || !canRetry || attempt >= tries) return res;
      const backoff = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      const asked = res.status === 429 ? retryAfterMs(header(res.headers, 'retry-after')) : undefined;
      if (asked !== undefined && asked > maxRetryAfterMs) return res;
      await drain(res.body);
      const delay = asked ?? backoff;
      log.debug(`${c.method} ${c.url.href}: ${res.status}; retrying in ${delay} ms`);
      await sleep(delay);
    }
  }

  /** One try: authentication (answering a 401 once) and redirects. */
  async #attempt(c: Call): Promise<Response> {
    const { st } = c;
    let authorization = c.auth ? await this.#authorization(c, undefined, false) : undefined;
    let res = await this.#raw(c, c.method, c.url, authorization);
    if (res.status === 401 && c.auth) {
      const text = await errorText(res.body);
      const challenge = pickChallenge(parseWwwAuthenticate(res.headers['www-authenticate']));
      const creds = await this.#credsFor(st);
      c.ctx.credentialSource = creds ? (creds.source ?? 'the credentials given') : undefined;
      if (!challenge)
        throw unauthorizedError(c.ctx, text, 'no Bearer or Basic challenge in WWW-Authenticate');
      st.challenge = challenge;
      if (!isReplayable(c.body)) throw unauthorizedError(c.ctx, text);
      const fresh = authorization !== undefined;
      authorization = await this.#authorization(c, challenge.params.scope, fresh);
      if (authorization === undefined) throw unauthorizedError(c.ctx, text);
      res = await this.#raw(c, c.method, c.url, authorization);
      if (res.status === 401) throw unauthorizedError(c.ctx, await errorText(res.body));
    }
    let url = c.url;
    let method = c.method;
    for (let hops = 0; c.redirects && REDIRECT.has(res.status); hops++) {
      const location = header(res.headers, 'location');
      if (!location) break;
      await drain(res.body);
      if (hops >= MAX_REDIRECTS)
        throw badResponse(c.ctx, `more than ${MAX_REDIRECTS} redirects (last to ${location})`);
      const next = new URL(location, url);
      if (res.status === 303) method = 'GET';
      const auth = next.origin === c.url.origin ? authorization : undefined;
      url = next;
      res = await this.#raw(c, method, url, auth);
    }
    return res;
  }

  async #raw(c: Call, method: HttpMethod, url: URL, authorization: string | undefined): Promise<Response> {
    const sameHost = url.host === c.st.ep.host;
    const dispatcher = this.transport.dispatcherFor(url, {
      tlsHost: sameHost ? c.st.ep.host : undefined,
      insecure: sameHost && c.st.ep.insecure,
    });
    const headers: Record<string, string> = { ...c.headers };
    // Credentials stay with the origin they were meant for: blob storage elsewhere gets none.
    if (url.origin !== c.url.origin) delete headers.authorization;
    if (authorization) headers.authorization = authorization;
    const res = await request(url, {
      method,
      headers,
      body: bodyFor(c.body) ?? null,
      dispatcher,
      // undici's default (64 KiB) pauses its parser after every socket read of a
      // blob and resumes it when the chunk is taken: about 5% of a five-layer pull.
      highWaterMark: RESPONSE_BUFFER,
    });
    return { status: res.statusCode, statusText: res.statusText, headers: res.headers, body: res.body, url };
  }

  /** The Authorization header for a call, from the endpoint's last challenge; undefined when none applies. */
  async #authorization(
    c: Call,
    challengeScope: string | undefined,
    fresh: boolean,
  ): Promise<string | undefined> {
    const ch = c.st.challenge;
    if (!ch) return undefined;
    const creds = await this.#credsFor(c.st);
    if (ch.scheme === 'basic') {
      if (!creds || (!creds.username && !creds.password)) return undefined;
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    if (ch.scheme !== 'bearer') return undefined;
    const scopes = [...new Set([...c.scopes, ...(challengeScope ? challengeScope.split(' ') : [])])]
      .filter(Boolean)
      .sort();
    const token = await this.#token(c, ch, scopes, creds, fresh);
    return `Bearer ${token}`;
  }

  async #token(
    c: Call,
    ch: Challenge,
    scopes: string[],
    creds: (Credentials & { source?: string }) | undefined,
    fresh: boolean,
  ): Promise<string> {
    const realm = ch.params.realm;
    if (!realm) throw badResponse(c.ctx, 'a Bearer challenge without a realm');
    const service = ch.params.service ?? '';
    const key = [
      realm,
      service,
      creds?.username ?? '',
      creds?.identityToken ? 'id' : '',
      scopes.join(' '),
    ].join('\n');
    const cached = this.#tokens.get(key);
    if (!fresh && cached && cached.expiresAt > Date.now()) return cached.token;
    let pending = this.#pendingTokens.get(key);
    if (!pending) {
      pending = this.#fetchToken(c, realm, service, scopes, creds).finally(() =>
        this.#pendingTokens.delete(key),
      );
      this.#pendingTokens.set(key, pending);
    }
    const got = await pending;
    this.#tokens.set(key, got);
    return got.token;
  }

  async #fetchToken(
    c: Call,
    realm: string,
    service: string,
    scopes: string[],
    creds: (Credentials & { source?: string }) | undefined,
  ): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw badResponse(c.ctx, `the token realm "${realm}" is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw badResponse(c.ctx, `the token realm "${realm}" is not an http(s) URL`);
    }
    const ctx: OpContext = {
      ...c.ctx,
      credentialSource: creds ? (creds.source ?? 'the credentials given') : undefined,
    };
    const t: Call = this.#newCall(c.st, 'GET', url, ctx, { auth: false });
    t.redirects = true;
    if (creds?.identityToken) {
      // OAuth2 refresh-token grant, as docker does with an identity token.
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        client_id: 'hutch',
        service,
        scope: scopes.join(' '),
      });
      t.method = 'POST';
      t.redirects = false;
      t.body = Buffer.from(form.toString());
      t.headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      if (creds?.username) {
        url.searchParams.set('account', creds.username);
        t.headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      }
    }
    const started = Date.now();
    const res = await this.#send(t);
    if (res.status === 401 || res.status === 403) {
      throw unauthorizedError(
        ctx,
        await errorText(res.body),
        `the token service ${url.origin} answered ${res.status}`,
      );
    }
    if (res.status !== 200) throw await this.#statusFailure(t, res);
    const buf = await readLimited(res.body, 1024 * 1024);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse((buf ?? Buffer.alloc(0)).toString('utf8')) as typeof parsed;
    } catch {
      throw badResponse(ctx, `the token service ${url.origin} did not answer JSON`);
    }
    const token =
      typeof parsed?.token === 'string' && parsed.token
        ? parsed.token
        : typeof parsed?.access_token === 'string' && parsed.access_token
          ? parsed.access_token
          : undefined;
    if (!token) throw badResponse(ctx, `the token service ${url.origin} answered without a token`);
    const seconds = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    // Renew a little early so a token never expires between use and arrival.
    const margin = Math.min(10_000, seconds * 100);
    return { token, expiresAt: started + seconds * 1000 - margin };
  }

  /** Reads the error body of a final answer and maps it to the error to throw. */
  async #statusFailure(c: Call, res: Response): Promise<HutchError> {
    const text = c.method === 'HEAD' ? '' : await errorText(res.body);
    await drain(res.body);
    if (res.status === 401) {
      const creds = await this.#credsFor(c.st);
      c.ctx.credentialSource ??= creds ? (creds.source ?? 'the credentials given') : undefined;
    }
    return statusError(c.ctx, res.status, text, res.statusText);
  }
}
