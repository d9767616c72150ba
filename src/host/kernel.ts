/**
 * Version numbers of the kernel and of kernel modules, and the kernel
 * features rootless containers depend on.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { HostView } from './view.ts';

let knownRelease: string | undefined;

/**
 * The running kernel's release ("6.1.0-18-amd64"), as uname(2) gives it.
 * Read from /proc: loading node:os for os.release() cost every container
 * start about a quarter of a millisecond, and nothing else there needs it.
 */
export function kernelRelease(): string {
  if (knownRelease === undefined) {
    try {
      knownRelease = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
    } catch {
      knownRelease = release();
    }
  }
  return knownRelease;
}

/** A dotted version as numbers: "6.1.0-18-amd64" → [6, 1, 0]. */
export type Version = readonly number[];

/** The leading dotted number of a version string: "2.2.2-0ubuntu9" → [2, 2, 2]; "v6.2" → [6, 2]. */
export function parseVersion(text: string): Version | undefined {
  const m = /(\d+(?:\.\d+)*)/.exec(text);
  if (!m?.[1]) return undefined;
  return m[1].split('.').map(Number);
}

/** The kernel release's major.minor.patch ("6.18.44-fc-v657" → [6, 18, 44]); missing parts are 0. */
export function parseKernelRelease(release: string): Version | undefined {
  const m = /^\s*(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** Negative, zero or positive as a is older than, equal to or newer than b; missing parts count as 0. */
export function compareVersions(a: Version, b: Version): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function atLeast(v: Version, min: Version): boolean {
  return compareVersions(v, min) >= 0;
}

export function formatVersion(v: Version): string {
  return v.join('.');
}

export function kernelVersion(host: HostView): Version | undefined {
  return parseKernelRelease(host.kernelRelease());
}

/** Kernel overlay inside a user namespace (mount option userxattr) arrived in Linux 5.11. */
export const ROOTLESS_OVERLAY_KERNEL: Version = [5, 11];
/** With SELinux enforcing, rootless kernel overlay needs the fixes of Linux 5.13. */
export const ROOTLESS_OVERLAY_KERNEL_SELINUX: Version = [5, 13];

/** SELinux is enforcing (/sys/fs/selinux/enforce reads 1). */
export function selinuxEnforcing(host: HostView): boolean {
  return host.readFile('/sys/fs/selinux/enforce')?.trim() === '1';
}

/** The loaded OpenZFS module's version (/sys/module/zfs/version), e.g. "2.1.11-1". */
export function zfsModuleVersion(host: HostView): string | undefined {
  const v = host.readFile('/sys/module/zfs/version')?.trim();
  return v === undefined || v === '' ? undefined : v;
}

/** Reads a numeric sysctl through /proc/sys ("user.max_user_namespaces"); undefined when absent. */
export function readSysctl(host: HostView, name: string): number | undefined {
  const text = host.readFile(`/proc/sys/${name.replaceAll('.', '/')}`);
  if (text === undefined) return undefined;
  const n = Number.parseInt(text.trim().split(/\s+/)[0] ?? '', 10);
  return Number.isNaN(n) ? undefined : n;
}
