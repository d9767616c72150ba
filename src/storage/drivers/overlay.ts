/**
 * overlay: each layer keeps only its own changes (diff/, with overlayfs
 * whiteouts); a container's root is an overlay mount of the chain with a
 * fresh upper directory. Rootless, it mounts inside the user namespace with
 * the `userxattr` option (kernel >= 5.11).
 *
 *   overlay/l/<short>               -> ../layers/<id>/diff (keeps mount options short)
 *   overlay/layers/<id>/diff        the layer's files
 *   overlay/layers/<id>/link        its short name
 *   overlay/layers/<id>/lower       the short names below it, nearest first
 *   overlay/containers/<id>/{diff,work,merged}
 */
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { namespaceIdLimits } from '../../sys/identity.ts';
import { MNT_DETACH, MS, sys } from '../../sys/native.ts';
import { HutchError, errnoCode } from '../../util/errors.ts';
import { randomHex } from '../../util/random.ts';
import { applyLayer } from '../extract/index.ts';
import type { ApplyResult, CreateOptions, LayerDriver, MountOptions } from '../types.ts';
import { DriverLayout } from './layout.ts';

/** The kernel takes mount options up to a page; each lower costs `l/<26>:`. */
const MAX_MOUNT_DATA = 4000;

function shortName(): string {
  return randomBytes(16).toString('base64url').replace(/[-_]/g, 'x').slice(0, 26).toUpperCase();
}

export class OverlayDriver implements LayerDriver {
  readonly name: string = 'overlay';
  readonly layout: DriverLayout;
  protected readonly rootless: boolean;
  /** Whether the mount reads `.wh.NAME` files as whiteouts where the kernel refuses 0:0 devices (fuse-overlayfs). */
  protected readonly whiteoutFiles: boolean = false;

  /** `dir`: the driver's directory under ROOT/storage (fuse-overlayfs keeps layers the same way, in its own). */
  constructor(storeRoot: string, rootless: boolean, dir = 'overlay') {
    this.layout = new DriverLayout(storeRoot, dir);
    this.rootless = rootless;
    mkdirSync(join(this.layout.home, 'l'), { recursive: true, mode: 0o700 });
  }

  private link(id: string): string {
    return readFileSync(join(this.layout.layer(id), 'link'), 'utf8').trim();
  }

  private lowers(id: string): string[] {
    const text = readFileSync(join(this.layout.layer(id), 'lower'), 'utf8').trim();
    return text === '' ? [] : text.split(':');
  }

  /** The layer directories of the image whose top layer is `top`, top first, relative to the driver's home. */
  protected chain(top: string): string[] {
    return [`l/${this.link(top)}`, ...this.lowers(top)];
  }

  async createLayer(
    id: string,
    parent: string | undefined,
    diff: Readable,
    opts: CreateOptions = {},
  ): Promise<ApplyResult> {
    // Published but killed before its short link was made: start that layer over.
    if (existsSync(this.layout.layer(id))) this.removeLayer(id);
    const stage = this.layout.staging(id);
    try {
      const diffDir = join(stage.dir, 'diff');
      mkdirSync(diffDir, { mode: 0o755 });
      const result = await applyLayer(diff, diffDir, {
        whiteouts: 'overlay',
        whiteoutFiles: this.whiteoutFiles,
        userxattr: this.rootless,
        canMknod: !this.rootless,
        ...namespaceIdLimits(),
      });
      if (opts.rootOwner) chownSync(diffDir, opts.rootOwner.uid, opts.rootOwner.gid);
      const below = parent === undefined ? [] : [`l/${this.link(parent)}`, ...this.lowers(parent)];
      const short = shortName();
      writeFileSync(join(stage.dir, 'link'), short);
      writeFileSync(join(stage.dir, 'lower'), below.join(':'));
      stage.publish();
      // The short link last: a link without a layer would be garbage, never a dangling lower.
      symlinkSync(`../layers/${id}/diff`, join(this.layout.home, 'l', short));
      return result;
    } catch (e) {
      stage.discard();
      throw e;
    }
  }

  hasLayer(id: string): boolean {
    try {
      return existsSync(join(this.layout.home, 'l', this.link(id)));
    } catch {
      return false;
    }
  }

  removeLayer(id: string): void {
    try {
      rmSync(join(this.layout.home, 'l', this.link(id)), { force: true });
    } catch {
      // No link file: a half-removed layer; remove what is left.
    }
    rmSync(this.layout.layer(id), { recursive: true, force: true });
  }

  listLayers(kind: 'image' | 'shifted' = 'image'): string[] {
    return this.layout.listLayers(kind);
  }

  layerPath(id: string): string {
    return join(this.layout.layer(id), 'diff');
  }

  mountContainer(containerId: string, top: string, opts: MountOptions = {}): string {
    const dir = this.layout.container(containerId);
    const merged = join(dir, 'merged');
    for (const sub of ['diff', 'work', 'merged']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 });
    if (opts.rootOwner) chownSync(join(dir, 'diff'), opts.rootOwner.uid, opts.rootOwner.gid);
    const lower = this.chain(top).join(':');
    const data = `lowerdir=${lower},upperdir=${join(dir, 'diff')},workdir=${join(dir, 'work')}${this.rootless ? ',userxattr' : ''}${opts.volatile ? ',volatile' : ''}`;
    if (data.length > MAX_MOUNT_DATA) {
      throw new HutchError(
        'TOO_MANY_LAYERS',
        `the image has too many layers for one overlay mount (${data.length} bytes of options)`,
        {
          hint: 'Squash the image (hutch commit or a multi-stage build), or use --storage-driver vfs.',
        },
      );
    }
    // Lower directories are given relative to the driver's home (short names): mount from there.
    const cwd = process.cwd();
    process.chdir(this.layout.home);
    try {
      try {
        sys().mount('overlay', merged, 'overlay', 0, data);
      } catch (e) {
        // Kernels before 5.10 know no `volatile`: mount durably instead.
        if (!opts.volatile || errnoCode(e) !== 'EINVAL') throw e;
        sys().mount('overlay', merged, 'overlay', 0, data.replace(/,volatile$/, ''));
      }
    } catch (e) {
      if (errnoCode(e) === 'EBUSY') return merged; // already mounted by an earlier start
      throw new HutchError('MOUNT', `mounting the container's root failed: ${(e as Error).message}`, {
        hint: 'Run `hutch doctor`: it tests kernel overlay here and says which driver to use instead.',
        cause: e,
      });
    } finally {
      process.chdir(cwd);
    }
    return merged;
  }

  viewImage(top: string): { path: string; release: () => void } {
    // A read-only overlay of the chain alone. The kernel wants two lower
    // directories at least when there is no upper one: an empty one makes
    // up the count for a one-layer image. Views live under views/, where
    // `system check` finds one a killed command left mounted.
    const empty = join(this.layout.home, 'empty');
    mkdirSync(empty, { recursive: true, mode: 0o755 });
    // Named for this process: `system check` leaves the views of live processes alone.
    const merged = join(this.layout.views, `${process.pid}-${randomHex(8)}`);
    mkdirSync(merged, { recursive: true, mode: 0o755 });
    const lower = [...this.chain(top), 'empty'].join(':');
    const cwd = process.cwd();
    process.chdir(this.layout.home);
    try {
      sys().mount(
        'overlay',
        merged,
        'overlay',
        MS.RDONLY,
        `lowerdir=${lower}${this.rootless ? ',userxattr' : ''}`,
      );
    } catch (e) {
      rmSync(merged, { recursive: true, force: true });
      throw new HutchError('MOUNT', `mounting the image's layers failed: ${(e as Error).message}`, {
        cause: e,
      });
    } finally {
      process.chdir(cwd);
    }
    return { path: merged, release: () => DriverLayout.dropView(merged) };
  }

  unmountContainer(containerId: string): void {
    try {
      sys().umount(join(this.layout.container(containerId), 'merged'), MNT_DETACH);
    } catch (e) {
      if (errnoCode(e) !== 'EINVAL' && errnoCode(e) !== 'ENOENT') throw e;
    }
  }

  removeContainer(containerId: string): void {
    this.unmountContainer(containerId);
    rmSync(this.layout.container(containerId), { recursive: true, force: true });
  }

  usage(id: string): number {
    return DriverLayout.usage(this.layerPath(id));
  }
}
