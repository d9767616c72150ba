/**
 * The zfs driver's tests: the parent dataset the test setup made on a
 * zfs-fuse pool (HUTCH_TEST_ZFS), and a child of it per sandbox so tests
 * never see each other's layers.
 */
import { spawnSync } from 'node:child_process';

export const ZFS_PARENT = process.env.HUTCH_TEST_ZFS || undefined;

export const NEEDS_ZFS =
  process.getuid?.() !== 0
    ? 'runs as root only'
    : ZFS_PARENT
      ? false
      : 'no zfs-fuse pool (HUTCH_TEST_ZFS unset: see the test setup notes)';

export function zfs(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('zfs', args, { encoding: 'utf8' });
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** A fresh child dataset of the test parent, not mounted itself. */
export function childDataset(tag: string): string {
  const name = `${ZFS_PARENT}/${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const r = zfs(['create', '-o', 'mountpoint=none', name]);
  if (r.status !== 0) throw new Error(`zfs create ${name}: ${r.stderr}`);
  return name;
}

/** Every filesystem under `dataset`, names relative to it ('' for itself). */
export function datasetsUnder(dataset: string): string[] {
  const r = zfs(['list', '-H', '-t', 'filesystem', '-o', 'name', '-r', dataset]);
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((n) => n.slice(dataset.length).replace(/^\//, ''));
}

/**
 * Datasets under `dataset` that hutch still counts (not retired with
 * hutch:removed=1). A retired one may outlive its removal where another
 * mount namespace holds a copy of its mount: this shared test machine has
 * such namespaces (other users' pause processes), a clean CI machine not.
 */
export function liveDatasetsUnder(dataset: string): string[] {
  const r = zfs(['list', '-H', '-t', 'filesystem', '-o', 'name,hutch:removed', '-r', dataset]);
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'))
    .filter(([, removed]) => removed !== '1')
    .map(([n = '']) => n.slice(dataset.length).replace(/^\//, ''));
}

export function destroyDataset(dataset: string): void {
  zfs(['destroy', '-r', '-f', dataset]);
}
