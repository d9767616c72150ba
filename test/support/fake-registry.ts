/**
 * A registry that misbehaves on purpose, for the error paths of pull: a
 * node:http server on loopback serving one small, valid image, with the
 * repository name choosing how to break (`/v2/<mode>/app/...`).
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { gzipSync } from 'node:zlib';

function sha(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** A one-file tar, written by hand (512-byte header, data, two zero blocks). */
function tinyTar(name: string, content: string): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(Buffer.byteLength(content).toString(8).padStart(11, '0') + '\0', 124);
  header.write('14500000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const data = Buffer.alloc(Math.ceil(Buffer.byteLength(content) / 512) * 512);
  data.write(content);
  return Buffer.concat([header, data, Buffer.alloc(1024)]);
}

export const MODES = [
  'ok',
  'blob-mismatch',
  'manifest-mismatch',
  'truncated',
  'unauthorized',
  'forbidden',
  'notfound',
  'ratelimited',
  'servererror',
  'garbage',
  'helm',
  'diffid-mismatch',
  'flaky',
  'schema1',
  'config-missing',
  'ahead-mismatch',
] as const;
export type Mode = (typeof MODES)[number];

export interface FakeRegistry {
  host: string;
  manifestDigest: string;
  close(): Promise<void>;
}

export async function startFakeRegistry(): Promise<FakeRegistry> {
  const tar = tinyTar('hello.txt', 'hello from the fake registry\n');
  const layer = gzipSync(tar);
  const otherTar = tinyTar('other.txt', 'not what the config says\n');
  const otherLayer = gzipSync(otherTar);
  const config = (diffId: string): Buffer =>
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['sh'] },
        rootfs: { type: 'layers', diff_ids: [diffId] },
      }),
    );
  const goodConfig = config(sha(tar));
  const manifest = (
    cfg: Buffer,
    lay: Buffer,
    configType = 'application/vnd.oci.image.config.v1+json',
  ): Buffer =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: configType, digest: sha(cfg), size: cfg.length },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(lay), size: lay.length },
        ],
      }),
    );
  const good = manifest(goodConfig, layer);
  // Three layers that start slowly and a config the registry has lost: pull has
  // the layers downloading (it starts them with the config) when the config fails.
  const slowLayers = ['a', 'b', 'c'].map((n) => gzipSync(tinyTar(`${n}.txt`, `layer ${n}\n`)));
  const slowSet = new Set(slowLayers.map((l) => sha(l)));
  const lostConfig = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha('a config nobody stored'),
        size: 22,
      },
      layers: slowLayers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: sha(l),
        size: l.length,
      })),
    }),
  );

  // Three layers, the last of them corrupt: pull downloads it ahead, while the first ones unpack.
  const aheadTars = ['x', 'y', 'z'].map((n) => tinyTar(`${n}.txt`, `layer ${n}\n`));
  const aheadLayers = aheadTars.map((t) => gzipSync(t));
  const aheadConfig = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: aheadTars.map((t) => sha(t)) },
    }),
  );
  const aheadManifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(aheadConfig),
        size: aheadConfig.length,
      },
      layers: aheadLayers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: sha(l),
        size: l.length,
      })),
    }),
  );

  const helm = manifest(goodConfig, layer, 'application/vnd.cncf.helm.config.v1+json');
  // A layer whose content is fine as a blob but unpacks to another diff ID than the config says.
  const wrongDiff = manifest(goodConfig, otherLayer);

  let flakyServed = 0;
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/' || url === '/v2') return void res.writeHead(200).end('{}');
    const m = /^\/v2\/([a-z0-9-]+)\/app\/(manifests|blobs)\/(.+)$/.exec(url);
    if (!m) return void res.writeHead(404).end();
    const [, mode, kind, ref] = m as unknown as [string, Mode, string, string];
    const json = (status: number, body: unknown, headers: Record<string, string> = {}): void =>
      void res
        .writeHead(status, { 'content-type': 'application/json', ...headers })
        .end(JSON.stringify(body));
    switch (mode) {
      case 'unauthorized':
        return json(
          401,
          { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] },
          { 'www-authenticate': 'Basic realm="fake"' },
        );
      case 'forbidden':
        return json(403, {
          errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }],
        });
      case 'notfound':
        return json(404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
      case 'ratelimited':
        return json(
          429,
          { errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] },
          { 'retry-after': '3600' },
        );
      case 'servererror':
        return json(500, { errors: [{ code: 'UNKNOWN', message: 'it broke' }] });
      case 'garbage':
        if (kind === 'manifests')
          return void res
            .writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
            .end('{"schemaVersion": 2, "config": ');
        break;
      default:
        break;
    }
    if (kind === 'manifests' && mode === 'schema1') {
      const v1 = Buffer.from(
        JSON.stringify({ schemaVersion: 1, name: 'schema1/app', tag: 'latest', fsLayers: [] }),
      );
      return void res
        .writeHead(200, {
          'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws',
          'docker-content-digest': sha(v1),
        })
        .end(v1);
    }
    if (kind === 'manifests') {
      const body =
        mode === 'helm'
          ? helm
          : mode === 'diffid-mismatch'
            ? wrongDiff
            : mode === 'config-missing'
              ? lostConfig
              : mode === 'ahead-mismatch'
                ? aheadManifest
                : good;
      const sent =
        mode === 'manifest-mismatch'
          ? Buffer.from(body.toString().replace('"schemaVersion":2', '"schemaVersion": 2'))
          : body;
      return void res
        .writeHead(200, {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'docker-content-digest': sha(body),
          'content-length': String(sent.length),
        })
        .end(sent);
    }
    const blobs = new Map<string, Buffer>([
      [sha(goodConfig), goodConfig],
      [sha(layer), layer],
      [sha(otherLayer), otherLayer],
      ...slowLayers.map((l): [string, Buffer] => [sha(l), l]),
      [sha(aheadConfig), aheadConfig],
      ...aheadLayers.map((l): [string, Buffer] => [sha(l), l]),
    ]);
    const blob = blobs.get(ref);
    if (blob && slowSet.has(ref)) {
      // Headers at once, the bytes a while later: the download is under way when the config fails.
      res.writeHead(200, { 'content-length': String(blob.length) });
      res.flushHeaders();
      return void setTimeout(() => res.end(blob), 800);
    }
    if (!blob) return json(404, { errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] });
    if (
      (ref === sha(layer) && mode === 'blob-mismatch') ||
      (ref === sha(aheadLayers[2]!) && mode === 'ahead-mismatch')
    ) {
      const bad = Buffer.from(blob);
      bad[bad.length - 10]! ^= 0xff;
      return void res.writeHead(200, { 'content-length': String(bad.length) }).end(bad);
    }
    if (ref === sha(layer) && mode === 'flaky') {
      // The first download breaks halfway; later ones honour Range, as registries do.
      flakyServed++;
      const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
      if (flakyServed === 1 || !range) {
        res.writeHead(200, { 'content-length': String(blob.length) });
        res.write(blob.subarray(0, Math.floor(blob.length / 2)));
        return void setTimeout(() => res.socket?.destroy(), 50);
      }
      const from = Number(range[1]);
      return void res
        .writeHead(206, {
          'content-length': String(blob.length - from),
          'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}`,
        })
        .end(blob.subarray(from));
    }
    if (ref === sha(layer) && mode === 'truncated') {
      res.writeHead(200, { 'content-length': String(blob.length) });
      res.write(blob.subarray(0, Math.floor(blob.length / 2)));
      return void setTimeout(() => res.socket?.destroy(), 50);
    }
    res.writeHead(200, { 'content-length': String(blob.length) }).end(blob);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    manifestDigest: sha(good),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The fake registry in a process of its own: tests run hutch with spawnSync,
 * which blocks their own event loop, so a server in the test process could
 * not answer.
 */
export async function startFakeRegistryProcess(): Promise<FakeRegistry> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [new URL('./fake-registry-main.ts', import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf.trim());
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`the fake registry exited (${code})`)));
  });
  const { host, manifestDigest } = JSON.parse(line) as { host: string; manifestDigest: string };
  return {
    host,
    manifestDigest,
    close: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
