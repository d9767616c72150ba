/**
 * Opening what container commands work on: the image store (for roots and
 * configs), the container store, the volume store and the OCI runtime. Also
 * where containers tell images and volumes that they are in use.
 */
import { join } from 'node:path';
import { ContainerStore } from '../../runtime/containers/store.ts';
import { removeInfraLocked, withInfraLock } from '../../network/infra.ts';
import { networkLeftovers, removeLeftovers } from '../../network/leftovers.ts';
import type { ImageDb } from '../../image/store/db.ts';
import { OciRuntime, pickRuntime } from '../../runtime/oci/runtime.ts';
import { endDaemonsUnder } from '../../storage/drivers/fuse-overlayfs-tool.ts';
import { VolumeStore } from '../../runtime/volumes.ts';
import type { Context } from '../context.ts';
import { openStateful } from '../context.ts';
import { onImageUse } from '../images.ts';
import { openImageStore } from '../images-store.ts';
import type { ImageStore } from '../images-store.ts';
import { onVolumeUse } from '../volumes.ts';
import { onStopAll } from '../system.ts';
import { releaseExited } from './cleanup.ts';
import { isRunning, waitForMonitor } from './stop.ts';

export interface Containers {
  ctx: Context;
  images: ImageStore;
  store: ContainerStore;
  volumes: VolumeStore;
  /** Image records alone (names, ids), without opening the storage driver. */
  imageDb(): ImageDb;
  runtime(name?: string): OciRuntime;
}

export function openContainers(ctx: Context): Containers {
  // The namespace and the store first; the image store (driver, blobs, metadata) only when used: `ps` never needs it.
  const opened = openStateful(ctx);
  const store = new ContainerStore(ctx.paths.root, ctx.paths.runroot);
  const runtimes = new Map<string, OciRuntime>();
  let volumes: VolumeStore | undefined;
  let images: ImageStore | undefined;
  return {
    ctx,
    get images() {
      return (images ??= openImageStore(ctx, opened));
    },
    store,
    imageDb: () => (images ??= openImageStore(ctx, opened)).db,
    get volumes() {
      return (volumes ??= new VolumeStore(ctx.paths.root));
    },
    runtime(name?: string): OciRuntime {
      const key = name ?? ctx.runtime ?? '';
      let r = runtimes.get(key);
      if (!r) {
        r = new OciRuntime(pickRuntime(name ?? ctx.runtime), store.runtimeRoot);
        runtimes.set(key, r);
      }
      return r;
    },
  };
}

/** Containers made from an image: rmi refuses to delete it under them. */
onImageUse((ctx, imageId) => {
  const store = new ContainerStore(ctx.paths.root, ctx.paths.runroot);
  return store
    .list()
    .filter((c) => c.config.imageId === imageId)
    .map((c) => c.name);
});

onVolumeUse((ctx, name) => {
  const store = new ContainerStore(ctx.paths.root, ctx.paths.runroot);
  return store
    .list()
    .filter((c) => c.hostConfig.mounts.some((m) => m.type === 'volume' && m.name === name))
    .map((c) => c.name);
});

/** `system migrate` and `system reset` end every container first: their mounts would outlive the namespace. */
onStopAll(async (ctx) => {
  const c = openContainers(ctx);
  for (const rec of c.store.list()) {
    if (isRunning(c, rec)) {
      c.store.update(rec.id, (r) => {
        r.state.stoppedByUser = true;
      });
      c.runtime(rec.runtime).kill(rec.id, 'SIGKILL');
      await waitForMonitor(rec, 10_000, c.store.exitFile(rec.id));
    }
    releaseExited(c, rec.id);
  }
  // fuse-overlayfs daemons of roots and views nothing owns any more: a daemon keeps a dead namespace alive.
  endDaemonsUnder(join(ctx.paths.root, 'storage', 'fuse-overlayfs'));
  // Whatever a killed start left: nothing runs now that could need it.
  for (const [id, left] of networkLeftovers(ctx.paths.runroot)) removeLeftovers(ctx.paths, id, left);
  // And the user networks' namespace with its pasta and name server, whatever leases say.
  withInfraLock(ctx.paths.runroot, () => removeInfraLocked(ctx.paths.runroot));
});
