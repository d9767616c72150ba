/**
 * A container's network namespace as a file: RUNROOT/netns/ID, a bind mount
 * of the namespace in hutch's mount namespace. pasta and slirp4netns join it
 * by that path before the container exists (so published ports are ready
 * when its process starts), the runtime puts the container into it, and
 * `container:NAME` joins it. Made in-process (native/sys.c newNetns).
 */
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sys, unmountEvery } from '../sys/native.ts';

export function netnsDir(runroot: string): string {
  return join(runroot, 'netns');
}

export function netnsPath(runroot: string, id: string): string {
  return join(netnsDir(runroot), id);
}

/** Makes the namespace file; one left by a killed start is taken down first. */
export function createNetns(path: string): void {
  removeNetns(path);
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'wx', 0o600));
  try {
    sys().newNetns(path);
  } catch (e) {
    rmSync(path, { force: true });
    throw e;
  }
}

/** Unmounts and deletes the namespace file; the namespace ends with its last process. */
export function removeNetns(path: string): void {
  unmountEvery(path);
  rmSync(path, { force: true });
}
