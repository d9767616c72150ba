/**
 * For the archive tests (not a test file itself): a store in a temporary
 * directory with a layer driver that only records what it was given, tar
 * streams built in memory, and small images to put in archives.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import type { Header } from 'tar-stream';
import type { ApplyResult, LayerDriver } from '../../../../src/storage/types.ts';
import { BlobStore } from '../../../../src/image/store/blobs.ts';
import { ImageDb } from '../../../../src/image/store/db.ts';
import type { LoadTarget } from '../../../../src/image/archive/load.ts';

export const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Keeps each layer's tar bytes in memory; fails a layer whose stream errors. */
export class MemoryDriver implements LayerDriver {
  readonly name = 'memory';
  readonly layers = new Map<string, { parent: string | undefined; tar: Buffer }>();
  created = 0;

  async createLayer(id: string, parent: string | undefined, diff: Readable): Promise<ApplyResult> {
    const parts: Buffer[] = [];
    for await (const c of diff) parts.push(c as Buffer);
    const tar = Buffer.concat(parts);
    this.layers.set(id, { parent, tar });
    this.created++;
    return { size: tar.length, warnings: [] };
  }
  hasLayer(id: string): boolean {
    return this.layers.has(id);
  }
  removeLayer(id: string): void {
    this.layers.delete(id);
  }
  listLayers(kind: 'image' | 'shifted' = 'image'): string[] {
    return kind === 'image' ? [...this.layers.keys()] : [];
  }
  layerPath(id: string): string {
    return `/memory/${id}`;
  }
  mountContainer(): string {
    throw new Error('not in memory');
  }
  viewImage(): { path: string; release: () => void } {
    throw new Error('not in memory');
  }
  unmountContainer(): void {}
  removeContainer(): void {}
  usage(id: string): number {
    return this.layers.get(id)?.tar.length ?? 0;
  }
}

export interface TestStore extends LoadTarget {
  root: string;
  driver: MemoryDriver;
  cleanup(): void;
  /** Files left in the ingest area (lock files aside). */
  ingestLeft(): string[];
}

export function testStore(): TestStore {
  const root = mkdtempSync(join(tmpdir(), 'hutch-archive-'));
  const blobs = new BlobStore(root);
  return {
    root,
    blobs,
    db: new ImageDb(root),
    driver: new MemoryDriver(),
    platform: { os: 'linux', architecture: 'amd64' },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
    ingestLeft: () => readdirSync(blobs.ingestDir).filter((n) => !n.endsWith('.lock')),
  };
}

export type Entry = Partial<Header> & { name: string; body?: Buffer | string };

/** A tar made by tar-stream, end-of-archive blocks included. */
export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const out = (async (): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const c of p) parts.push(c as Buffer);
    return Buffer.concat(parts);
  })();
  for (const { body, ...h } of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (e?: Error | null): void => (e ? reject(e) : resolve());
      if (h.type === 'symlink' || h.type === 'link' || h.type === 'directory')
        p.entry({ mtime: new Date(0), ...h }, cb);
      else p.entry({ mtime: new Date(0), ...h }, body ?? '', cb);
    });
  }
  p.finalize();
  return out;
}

export const streamOf = (b: Buffer): Readable => Readable.from([b]);

/** A layer: a tar with one file of `size` random bytes (larger than 1 MiB: staged or streamed, not in memory). */
export async function layerTar(name: string, size: number): Promise<Buffer> {
  return tarOf([
    { name: 'etc/', type: 'directory' },
    { name: `etc/${name}`, body: randomBytes(size) },
  ]);
}

export interface TestImage {
  layers: Buffer[];
  config: Buffer;
  configDigest: string;
  diffIds: string[];
}

export function imageOf(layers: Buffer[], extra: Record<string, unknown> = {}): TestImage {
  const diffIds = layers.map((l) => sha(l));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      ...extra,
    }),
  );
  return { layers, config, configDigest: sha(config), diffIds };
}

/** A docker-archive as podman writes it (manifest.json last), or as hutch does (first). */
export async function dockerArchive(
  im: TestImage,
  opts: { repoTags?: string[]; manifestFirst?: boolean; manifest?: unknown; extra?: Entry[] } = {},
): Promise<Buffer> {
  const hexOf = (d: string): string => d.slice(7);
  const manifest: Entry = {
    name: 'manifest.json',
    body: JSON.stringify(
      opts.manifest ?? [
        {
          Config: `${hexOf(im.configDigest)}.json`,
          RepoTags: opts.repoTags ?? ['busybox:latest'],
          Layers: im.diffIds.map((d) => `${hexOf(d)}.tar`),
        },
      ],
    ),
  };
  const config: Entry = { name: `${hexOf(im.configDigest)}.json`, body: im.config };
  const layers: Entry[] = im.layers.map((l, i) => ({ name: `${hexOf(im.diffIds[i]!)}.tar`, body: l }));
  const extra = opts.extra ?? [];
  return tarOf(
    opts.manifestFirst ? [manifest, config, ...layers, ...extra] : [...layers, config, ...extra, manifest],
  );
}
