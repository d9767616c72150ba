/**
 * The containers of a store for commands that only read records (`ps`):
 * the store without the runtime, spec and conmon code that `openContainers`
 * brings, so that listing loads little. Images open only if a filter needs them.
 */
import { ContainerStore } from '../../runtime/containers/store.ts';
import type { Context } from '../context.ts';
import { openStateful } from '../context.ts';
import { ImageDb } from '../../image/store/db.ts';
import type { Containers } from './open.ts';

export type ContainerReader = Pick<Containers, 'ctx' | 'store' | 'imageDb'>;

export function openContainerReader(ctx: Context): ContainerReader {
  openStateful(ctx);
  const store = new ContainerStore(ctx.paths.root, ctx.paths.runroot);
  let db: ImageDb | undefined;
  return { ctx, store, imageDb: () => (db ??= new ImageDb(ctx.paths.root)) };
}
