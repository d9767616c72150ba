/**
 * vfs: every layer is a full copy of its parent plus its own changes. Works
 * on any filesystem and needs no mounts; costs a full copy per layer and per
 * container (reflinks make that cheap on btrfs and XFS, which cp uses when
 * it can).
 */
import { chownSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { namespaceIdLimits } from '../../sys/identity.ts';
import { HutchError } from '../../util/errors.ts';
import { applyLayer } from '../extract/index.ts';
import type { ApplyResult, CreateOptions, LayerDriver } from '../types.ts';
import { DriverLayout } from './layout.ts';

/** `cp -a` keeps owners, modes, xattrs and hardlinks, which Node's fs.cp does not. */
function copyTree(from: string, to: string): void {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync('cp', ['-a', '--reflink=auto', `${from}/.`, to], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new HutchError(
      'STORAGE',
      `copying ${from} to ${to} failed: ${r.stderr.trim() || r.error?.message}`,
      {
        hint: 'Check free disk space (df -h) and that hutch runs inside its namespace.',
      },
    );
  }
}

export class VfsDriver implements LayerDriver {
  readonly name = 'vfs';
  readonly layout: DriverLayout;
  private readonly rootless: boolean;

  constructor(storeRoot: string, rootless: boolean) {
    this.layout = new DriverLayout(storeRoot, 'vfs');
    this.rootless = rootless;
  }

  async createLayer(
    id: string,
    parent: string | undefined,
    diff: Readable,
    opts: CreateOptions = {},
  ): Promise<ApplyResult> {
    const stage = this.layout.staging(id);
    try {
      if (parent !== undefined) copyTree(this.layerPath(parent), stage.dir);
      const result = await applyLayer(diff, stage.dir, {
        whiteouts: 'apply',
        userxattr: this.rootless,
        canMknod: !this.rootless,
        ...namespaceIdLimits(),
      });
      if (opts.rootOwner) chownSync(stage.dir, opts.rootOwner.uid, opts.rootOwner.gid);
      stage.publish();
      return result;
    } catch (e) {
      stage.discard();
      throw e;
    }
  }

  hasLayer(id: string): boolean {
    return existsSync(this.layout.layer(id));
  }

  removeLayer(id: string): void {
    rmSync(this.layout.layer(id), { recursive: true, force: true });
  }

  listLayers(kind: 'image' | 'shifted' = 'image'): string[] {
    return this.layout.listLayers(kind);
  }

  layerPath(id: string): string {
    return this.layout.layer(id);
  }

  mountContainer(containerId: string, top: string): string {
    const root = join(this.layout.container(containerId), 'rootfs');
    if (!existsSync(root)) {
      mkdirSync(this.layout.container(containerId), { recursive: true, mode: 0o700 });
      const stage = `${root}.tmp`;
      rmSync(stage, { recursive: true, force: true });
      mkdirSync(stage, { mode: 0o755 });
      copyTree(this.layerPath(top), stage);
      const { renameSync } = process.getBuiltinModule('node:fs');
      renameSync(stage, root);
    }
    return root;
  }

  viewImage(top: string): { path: string; release: () => void } {
    // A vfs layer is the whole tree already.
    return { path: this.layerPath(top), release: () => undefined };
  }

  unmountContainer(): void {
    // A vfs root is a plain directory: nothing to unmount.
  }

  removeContainer(containerId: string): void {
    rmSync(this.layout.container(containerId), { recursive: true, force: true });
  }

  usage(id: string): number {
    return DriverLayout.usage(this.layerPath(id));
  }
}
