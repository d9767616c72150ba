/**
 * The root of a container with its own ID mapping, where the runtime can
 * reach it. The runtime resolves root.path after it has entered the
 * container's user namespace, as the container's root. With `nomap` that
 * user has no rights on the user's own directories: the 0700 directories
 * above the store stop the lookup. So the root is bound at BUNDLE/rootfs and
 * the spec names it relative to the bundle (the runtime's working
 * directory, entered before the namespace): only the bundle directory
 * itself needs to be searchable (0711), not its parents.
 *
 * The bind lives in hutch's mount namespace only. It goes before the
 * storage driver unmounts the root (hideRoot), and `system check` removes
 * one that a killed command left.
 */
import { chmodSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { MS, sys, unmountEvery } from '../../sys/native.ts';
import { errnoCode } from '../../util/errors.ts';

export const BUNDLE_ROOT = 'rootfs';

/** Binds `rootfs` at BUNDLE/rootfs; returns root.path for the spec. */
export function exposeRoot(bundle: string, rootfs: string): string {
  const target = join(bundle, BUNDLE_ROOT);
  mkdirSync(target, { recursive: true, mode: 0o755 });
  hideRoot(bundle, { keepDir: true }); // a stale bind of an earlier start
  sys().mount(rootfs, target, '', MS.BIND | MS.REC, '');
  chmodSync(bundle, 0o711);
  return BUNDLE_ROOT;
}

/** Takes the bind away (every layer of it); a bundle without one is left as it is. */
export function hideRoot(bundle: string, opts: { keepDir?: boolean } = {}): void {
  const target = join(bundle, BUNDLE_ROOT);
  unmountEvery(target);
  if (opts.keepDir) return;
  try {
    rmdirSync(target);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}
