/** The shapes `hutch doctor` works with: what a check gets, and what it reports. */
import type { HostView } from '../../host/view.ts';

export type CheckStatus = 'PASS' | 'WARN' | 'FAIL' | 'INFO';

/** The groups of the human report, in the order they are printed. */
export const TOPICS = [
  'Kernel',
  'User namespaces',
  'Sub-ids',
  'cgroups',
  'Session',
  'Devices',
  'Network',
  'Tools',
  'Storage',
] as const;

export type Topic = (typeof TOPICS)[number];

export interface Check {
  /** Stable, for scripts and tests: 'userns.max', 'subid.ranges', 'cgroup.hybrid', ... */
  id: string;
  topic: Topic;
  title: string;
  status: CheckStatus;
  reason: string;
  /** The exact command(s) that fix it, one per line. */
  fix?: string;
}

export interface OverlayProbeResult {
  ok: boolean;
  error?: string | undefined;
  /** Where the test mount was made. */
  dir?: string | undefined;
}

export type BtrfsProbeResult = { ok: true } | { ok: false; reason: string; hint: string };

export interface DoctorUser {
  uid: number;
  gid: number;
  name: string;
  /** Supplementary groups, when known (device access by group). */
  groups?: readonly number[] | undefined;
}

export type ZfsProbeResult = { ok: true; dataset: string } | { ok: false; reason: string; hint: string };

export interface DoctorContext {
  host: HostView;
  user: DoctorUser;
  rootless: boolean;
  /** The store root (ROOT), whether or not it exists yet. */
  storePath: string;
  env: Readonly<Record<string, string | undefined>>;
  /** A real kernel-overlay test mount on the store's filesystem (probe.ts); called at most once. */
  probeOverlay?: (() => OverlayProbeResult) | undefined;
  /** A test subvolume made and deleted on the store's btrfs (storage/drivers/btrfs-probe.ts); called only there. */
  probeBtrfs?: (() => BtrfsProbeResult) | undefined;
  /** `[storage] zfs_dataset`, when set: the zfs driver's parent dataset. */
  zfsDataset?: string | undefined;
  /** Whether the zfs driver can use that dataset (storage/drivers/zfs-probe.ts); called only when it is set. */
  probeZfs?: (() => ZfsProbeResult) | undefined;
  /** hutch-helper's path, for the AppArmor profile in the advice; found from the package when omitted. */
  helperPath?: string | undefined;
}

/** `sudo ` when the user is not root: the prefix of every fix that needs root. */
export function sudo(ctx: DoctorContext): string {
  return ctx.user.uid === 0 ? '' : 'sudo ';
}
