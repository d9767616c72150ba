/**
 * The storage driver interface: how layers are kept on disk and how a
 * container's root filesystem is assembled from them: overlay, vfs, btrfs and
 * fuse-overlayfs and zfs implement it.
 */
import type { Readable } from 'node:stream';

export interface ApplyResult {
  /** Bytes of the uncompressed tar read. */
  size: number;
  /** Entries skipped (device nodes that cannot be made rootless, ...), with why. */
  warnings: string[];
}

export interface MountOptions {
  /**
   * The root's changes need not survive a crash (a --rm container): the
   * driver may skip syncing them, e.g. overlay's `volatile`, which spares
   * the unmount a flush of everything the container wrote.
   */
  volatile?: boolean;
  /**
   * Owner of the root's top directory, when the container has its own ID
   * mapping: overlay shows the upper directory's owner there, which must be
   * the mapped root's, not hutch's.
   */
  rootOwner?: { uid: number; gid: number } | undefined;
}

export interface CreateOptions {
  /**
   * Owner of the layer's root directory, which layer tars do not set (a
   * shifted copy's root must be its mapped root's).
   */
  rootOwner?: { uid: number; gid: number };
}

export interface LayerDriver {
  readonly name: 'overlay' | 'vfs' | 'btrfs' | 'fuse-overlayfs' | 'zfs' | string;
  /**
   * Creates layer `id` on top of `parent` (undefined for a base layer) and
   * applies the uncompressed tar stream `diff` to it. The layer becomes
   * visible only when complete: a crash leaves nothing half-made under `id`.
   */
  createLayer(
    id: string,
    parent: string | undefined,
    diff: Readable,
    opts?: CreateOptions,
  ): Promise<ApplyResult>;
  hasLayer(id: string): boolean;
  /** Also takes the temporary name of a half-made layer, for `system check --repair`. */
  removeLayer(id: string): void;
  /**
   * Every image layer id present on disk (for `system check`); with
   * 'shifted', the copies made for containers with their own ID mapping
   * (named TOP-KEY, see storage/shifted.ts) instead.
   */
  listLayers(kind?: 'image' | 'shifted'): string[];
  /** The directory holding the layer's own files (its diff for overlay, the full tree for vfs). */
  layerPath(id: string): string;
  /**
   * Prepares a writable root for a container on top of `top` (a layer id) and
   * returns the path to use as the OCI runtime's root.path.
   */
  mountContainer(containerId: string, top: string, opts?: MountOptions): string;
  unmountContainer(containerId: string): void;
  removeContainer(containerId: string): void;
  /**
   * The image whose top layer is `top` as one read-only tree, for reading
   * (a shifted copy for a container with its own ID mapping). `release`
   * takes the view away; a view left by a killed command is a root with no
   * container, which `system check` removes.
   */
  viewImage(top: string): { path: string; release: () => void };
  /** Bytes used by a layer (its own files). */
  usage(id: string): number;
}
