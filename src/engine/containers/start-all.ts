/**
 * `hutch start --all [--filter ...]`: which containers to start. With a
 * restart-policy filter it is the boot job of `hutch setup`'s services, and
 * does what docker's daemon does when it starts: `always` containers come
 * back whatever stopped them, `unless-stopped` ones only when the user did
 * not stop them (`hutch stop`, `kill`), so a container stopped on purpose
 * stays stopped across reboots.
 */
import type { ContainerReader } from './open-light.ts';
import { filterViews, views } from './list.ts';
import type { ContainerView } from './list.ts';

export function startAllSelection(
  list: ContainerView[],
  filters: string[],
  c: ContainerReader,
): ContainerView[] {
  const byPolicy = filters.some((f) => f.startsWith('restart-policy='));
  return filterViews(list, filters, c).filter(
    (v) =>
      v.state.status !== 'running' &&
      v.state.status !== 'paused' &&
      !(byPolicy && v.rec.hostConfig.restartPolicy.name === 'unless-stopped' && v.state.stoppedByUser),
  );
}

/** The ids `start --all` starts, on the store as it is now. */
export function startAllIds(c: ContainerReader, filters: string[]): string[] {
  return startAllSelection(views(c), filters, c).map((v) => v.rec.id);
}
