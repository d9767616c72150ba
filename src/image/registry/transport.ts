/**
 * The connections of one RegistryClient: keep-alive undici dispatchers,
 * one per (TLS configuration, proxy use), made on first use and closed
 * together. HTTP(S)_PROXY and NO_PROXY are honoured through undici's
 * EnvHttpProxyAgent; loopback hosts are always reached directly, as Go's
 * net/http (and so docker and podman) does.
 */
import { Agent, EnvHttpProxyAgent } from './undici-parts.ts';
import type { Dispatcher } from 'undici';
import { isLoopbackHost } from './config.ts';
import { loadRegistryTls } from './tls.ts';
import type { RegistryTls } from './tls.ts';

export interface TransportOptions {
  certDirs: string[];
  /** TCP + TLS connect timeout. */
  connectTimeoutMs?: number;
  /** Time to wait for a response's headers. */
  headersTimeoutMs?: number;
  /** Longest silence while a body streams in. */
  bodyTimeoutMs?: number;
  /** Environment the proxy variables are read from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** How one request's connection is made. */
export interface ConnectionKind {
  /** host[:port] whose certs.d folder applies: the registry's own; undefined for other hosts (redirect targets). */
  tlsHost: string | undefined;
  /** Skip certificate verification (insecure registries only). */
  insecure: boolean;
}

function proxyEnvSet(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.http_proxy || env.HTTP_PROXY || env.https_proxy || env.HTTPS_PROXY);
}

export class Transport {
  readonly #opts: TransportOptions;
  readonly #dispatchers = new Map<string, Dispatcher>();
  readonly #tls = new Map<string, RegistryTls | undefined>();

  constructor(opts: TransportOptions) {
    this.#opts = opts;
  }

  /** The certs.d files of `host`, read once. */
  tlsFor(host: string): RegistryTls | undefined {
    if (!this.#tls.has(host)) this.#tls.set(host, loadRegistryTls(host, this.#opts.certDirs));
    return this.#tls.get(host);
  }

  dispatcherFor(url: URL, kind: ConnectionKind): Dispatcher {
    const env = this.#opts.env ?? process.env;
    const proxied = !isLoopbackHost(url.host) && proxyEnvSet(env);
    const tls =
      kind.tlsHost !== undefined && url.protocol === 'https:' ? this.tlsFor(kind.tlsHost) : undefined;
    const key = `${tls?.dir ?? ''}|${kind.insecure && url.protocol === 'https:'}|${proxied}`;
    let d = this.#dispatchers.get(key);
    if (!d) {
      d = this.#make(tls, kind.insecure, proxied, env);
      this.#dispatchers.set(key, d);
    }
    return d;
  }

  #make(
    tls: RegistryTls | undefined,
    insecure: boolean,
    proxied: boolean,
    env: NodeJS.ProcessEnv,
  ): Dispatcher {
    const connect: Record<string, unknown> = { timeout: this.#opts.connectTimeoutMs ?? 30_000 };
    if (insecure) connect.rejectUnauthorized = false;
    if (tls) {
      if (tls.ca.length > 0) {
        // Extra CAs add to the ones Node trusts by default instead of replacing them.
        const nodeTls = process.getBuiltinModule('node:tls');
        const defaults =
          typeof nodeTls.getCACertificates === 'function'
            ? nodeTls.getCACertificates('default')
            : [...nodeTls.rootCertificates];
        connect.ca = [...defaults, ...tls.ca];
      }
      if (tls.cert && tls.key) {
        connect.cert = tls.cert;
        connect.key = tls.key;
      }
    }
    const common = {
      keepAliveTimeout: 30_000,
      headersTimeout: this.#opts.headersTimeoutMs ?? 120_000,
      bodyTimeout: this.#opts.bodyTimeoutMs ?? 120_000,
      connect,
    };
    if (!proxied) return new Agent(common);
    return new EnvHttpProxyAgent({
      ...common,
      requestTls: connect,
      httpProxy: env.http_proxy ?? env.HTTP_PROXY,
      httpsProxy: env.https_proxy ?? env.HTTPS_PROXY,
      noProxy: env.no_proxy ?? env.NO_PROXY ?? '',
    });
  }

  /** Closes every connection; the transport may be used again afterwards. */
  async close(): Promise<void> {
    const all = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(all.map((d) => d.close().catch(() => {})));
  }
}
