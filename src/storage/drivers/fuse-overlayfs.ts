/**
 * fuse-overlayfs: overlay in user space, for kernels and filesystems where
 * kernel overlay cannot be mounted rootless (Linux < 5.11, SELinux before
 * 5.13, OpenZFS < 2.2, ...). Layers are kept exactly as the overlay driver
 * keeps them, in storage/fuse-overlayfs/: fuse-overlayfs reads the kernel's
 * whiteouts (0:0 character devices, and `.wh.NAME` files where a kernel
 * refuses those) and opaque markers (trusted.overlay.opaque rootful,
 * user.overlay.opaque rootless), so the extractor writes them as for
 * overlay. What differs is the mount: a fuse-overlayfs process per
 * container root (storage/drivers/fuse-overlayfs-tool.ts), which must end
 * when the root is unmounted.
 *
 * Its own writes in a container's upper directory add two markers the
 * kernel does not use: opaque directories get user.fuseoverlayfs.opaque and
 * an empty `.wh..wh..opq` file, which the change walker reads too
 * (storage/archive/diff.ts).
 */
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomHex } from '../../util/random.ts';
import { HutchError, isHutchError } from '../../util/errors.ts';
import type { MountOptions } from '../types.ts';
import { isFuseMount, mountFuseOverlay, unmountFuseOverlay } from './fuse-overlayfs-tool.ts';
import { OverlayDriver } from './overlay.ts';

export class FuseOverlayDriver extends OverlayDriver {
  override readonly name = 'fuse-overlayfs';
  protected override readonly whiteoutFiles = true;

  constructor(storeRoot: string, rootless: boolean) {
    super(storeRoot, rootless, 'fuse-overlayfs');
  }

  override mountContainer(containerId: string, top: string, opts: MountOptions = {}): string {
    const dir = this.layout.container(containerId);
    const merged = join(dir, 'merged');
    for (const sub of ['diff', 'work', 'merged']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 });
    // Mounted by an earlier start (or a running container's export): one daemon per root.
    if (isFuseMount(merged)) return merged;
    if (opts.rootOwner) chownSync(join(dir, 'diff'), opts.rootOwner.uid, opts.rootOwner.gid);
    try {
      mountFuseOverlay({
        lower: this.chain(top),
        upper: { dir: join(dir, 'diff'), work: join(dir, 'work') },
        mountPoint: merged,
        cwd: this.layout.home,
        volatile: opts.volatile,
      });
    } catch (e) {
      if (!isHutchError(e)) throw e;
      throw new HutchError('MOUNT', `mounting the container's root failed: ${e.message}`, {
        hint: e.hint ?? 'Run `hutch doctor`.',
        cause: e,
      });
    }
    return merged;
  }

  override viewImage(top: string): { path: string; release: () => void } {
    // Read-only: lower layers alone. Named for this process, as overlay's views.
    const merged = join(this.layout.views, `${process.pid}-${randomHex(8)}`);
    mkdirSync(merged, { recursive: true, mode: 0o755 });
    try {
      mountFuseOverlay({ lower: this.chain(top), mountPoint: merged, cwd: this.layout.home });
    } catch (e) {
      rmSync(merged, { recursive: true, force: true });
      throw e;
    }
    return {
      path: merged,
      release: () => {
        unmountFuseOverlay(merged, this.layout.home);
        rmSync(merged, { recursive: true, force: true });
      },
    };
  }

  override unmountContainer(containerId: string): void {
    unmountFuseOverlay(join(this.layout.container(containerId), 'merged'), this.layout.home);
  }
}
