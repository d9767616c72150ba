/** Opening everything image commands work on: the store, its driver, blobs and metadata. */
import { BlobStore } from '../image/store/blobs.ts';
import { ImageDb } from '../image/store/db.ts';
import { chooseDriver, isDriverName, openDriver } from '../storage/drivers/index.ts';
import type { LayerDriver } from '../storage/types.ts';
import { storeDriver } from '../store/store.ts';
import type { Store } from '../store/store.ts';
import { HutchError } from '../util/errors.ts';
import type { Context } from './context.ts';
import { driverOptions, openStateful } from './context.ts';

export interface ImageStore {
  store: Store;
  driver: LayerDriver;
  blobs: BlobStore;
  db: ImageDb;
}

/** `store`: the store a command opened already (opening it twice would redo the reboot and namespace checks). */
export function openImageStore(ctx: Context, store: Store = openStateful(ctx)): ImageStore {
  const root = ctx.paths.root;
  const name = storeDriver(
    store,
    () => chooseDriver(ctx.storageDriver, root, driverOptions(ctx)),
    ctx.storageDriver,
  );
  if (!isDriverName(name)) {
    throw new HutchError(
      'BAD_DRIVER',
      `the store uses the "${name}" storage driver, which this hutch does not have`,
      {
        hint: 'Upgrade hutch, or start a new store with --root.',
      },
    );
  }
  return {
    store,
    driver: openDriver(name, root, driverOptions(ctx)),
    blobs: new BlobStore(root),
    db: new ImageDb(root),
  };
}
