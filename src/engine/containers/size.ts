/** A container's own disk use: its writable layer (what `ps -s` shows). */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import type { ContainerReader } from './open-light.ts';

function du(path: string): number {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of readdirSync(path)) total += du(join(path, name));
  return total;
}

export function duSize(c: ContainerReader, rec: Pick<ContainerRecord, 'driver' | 'id'>): number {
  const root = join(c.ctx.paths.root, 'storage', rec.driver, 'containers', rec.id);
  return du(join(root, rec.driver === 'overlay' || rec.driver === 'fuse-overlayfs' ? 'diff' : 'rootfs'));
}
