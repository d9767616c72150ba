/**
 * btrfs: every layer is a subvolume holding the full tree, made as a
 * snapshot of its parent's (copy-on-write: no data is copied) with the
 * layer's changes applied; a container's root is a writable snapshot of its
 * image's top layer. No mounts at all, so nothing to leak, and a container
 * starts in the time of one snapshot whatever the image's size.
 *
 *   btrfs/layers/<id>                 a subvolume: the image's whole tree up to this layer
 *   btrfs/layers/.tmp-<id>-<pid>-<r>  a layer being made (renamed to <id> when complete)
 *   btrfs/containers/<id>/rootfs      a writable snapshot of the top layer
 *
 * Layers stay writable subvolumes, as vfs's directories are: a read-only
 * one could not be deleted by an unprivileged user without a flag change
 * first, nor emptied by `system reset` where deletion is not allowed.
 * Rootless, deleting a subvolume needs `user_subvol_rm_allowed` (see
 * btrfs-probe.ts, which the choice of driver runs first).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { namespaceIdLimits } from '../../sys/identity.ts';
import { log } from '../../util/log.ts';
import { applyLayer } from '../extract/index.ts';
import type { ApplyResult, CreateOptions, LayerDriver, MountOptions } from '../types.ts';
import { createSubvolume, removeSubvolume, snapshotSubvolume } from './btrfs-tool.ts';
import { DriverLayout } from './layout.ts';

export class BtrfsDriver implements LayerDriver {
  readonly name = 'btrfs';
  readonly layout: DriverLayout;
  private readonly rootless: boolean;

  constructor(storeRoot: string, rootless: boolean) {
    this.layout = new DriverLayout(storeRoot, 'btrfs');
    this.rootless = rootless;
  }

  /**
   * Removes the subvolumes killed pulls left half-made (their process is
   * gone); `system check` reports any others. Called when a command opens
   * the store, so a crash costs no more than its own leftovers' space until then.
   */
  sweepAbandoned(): void {
    for (const name of this.layout.abandonedStaging()) {
      try {
        removeSubvolume(this.layout.layer(name));
      } catch (e) {
        log.debug(`leaving ${name} for system check: ${(e as Error).message}`);
      }
    }
  }

  async createLayer(
    id: string,
    parent: string | undefined,
    diff: Readable,
    opts: CreateOptions = {},
  ): Promise<ApplyResult> {
    const stage = this.layout.stagingPath(id);
    try {
      if (parent === undefined) {
        createSubvolume(stage);
        chmodSync(stage, 0o755); // as a layer tar's root would be, whatever the umask
      } else snapshotSubvolume(this.layerPath(parent), stage);
      const result = await applyLayer(diff, stage, {
        whiteouts: 'apply',
        userxattr: this.rootless,
        canMknod: !this.rootless,
        ...namespaceIdLimits(),
      });
      if (opts.rootOwner) chownSync(stage, opts.rootOwner.uid, opts.rootOwner.gid);
      // Renaming a subvolume is a directory rename: the layer appears whole or not at all.
      renameSync(stage, this.layout.layer(id));
      return result;
    } catch (e) {
      if (existsSync(stage)) removeSubvolume(stage);
      throw e;
    }
  }

  hasLayer(id: string): boolean {
    return existsSync(this.layout.layer(id));
  }

  /** Also takes the temporary name of a half-made layer (`system check --repair`). */
  removeLayer(id: string): void {
    const path = this.layout.layer(id);
    if (existsSync(path)) removeSubvolume(path);
  }

  listLayers(kind: 'image' | 'shifted' = 'image'): string[] {
    return this.layout.listLayers(kind);
  }

  layerPath(id: string): string {
    return this.layout.layer(id);
  }

  private rootOf(containerId: string): string {
    return join(this.layout.container(containerId), 'rootfs');
  }

  mountContainer(containerId: string, top: string, opts: MountOptions = {}): string {
    const root = this.rootOf(containerId);
    if (existsSync(root)) return root; // made by an earlier start: it holds what the container wrote
    mkdirSync(this.layout.container(containerId), { recursive: true, mode: 0o700 });
    // One transaction: the root exists whole or not at all, so it needs no temporary name.
    snapshotSubvolume(this.layerPath(top), root);
    if (opts.rootOwner) chownSync(root, opts.rootOwner.uid, opts.rootOwner.gid);
    return root;
  }

  unmountContainer(): void {
    // A snapshot is no mount: nothing to take off.
  }

  removeContainer(containerId: string): void {
    const root = this.rootOf(containerId);
    if (existsSync(root)) removeSubvolume(root);
    rmSync(this.layout.container(containerId), { recursive: true, force: true });
  }

  viewImage(top: string): { path: string; release: () => void } {
    // A layer is the whole tree already.
    return { path: this.layerPath(top), release: () => undefined };
  }

  usage(id: string): number {
    // Counts blocks shared with other snapshots too: exclusive sizes need quotas, which rootless cannot read.
    return DriverLayout.usage(this.layerPath(id));
  }
}
