/**
 * Prepares this machine for hutch's tests, as an admin would prepare a host,
 * idempotently: Debian packages, the unprivileged test user, `hutch setup`
 * for that user (sub-ids, device modes, the hybrid-cgroup repair, runtime
 * directory). Run as root by test/run.mjs.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const TEST_USER = 'hutchtest';

export const PACKAGES = [
  'crun',
  'runc',
  'conmon',
  'uidmap',
  'catatonit',
  'passt',
  'iproute2',
  'nftables',
  'slirp4netns',
  'fuse-overlayfs',
  'btrfs-progs',
  'btrfs-compsize',
  'zfs-fuse',
  'docker-registry',
  'busybox-static',
  'debootstrap',
  'iperf3',
  'podman',
  // podman's network backend with name resolution on user networks: with Debian's default (CNI
  // without the dnsname plugin) podman's containers cannot name each other, and the bench's
  // net-container-to-container scenario has no peer to measure.
  'netavark',
  'aardvark-dns',
  'golang-github-containers-common',
  'curl',
  'gcc',
  'libc6-dev',
];

function sh(
  cmd: string,
  args: string[],
  opts: { allowFail?: boolean; env?: NodeJS.ProcessEnv } = {},
): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env });
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  }
  return r.stdout;
}

function log(msg: string): void {
  process.stdout.write(`[setup] ${msg}\n`);
}

export function missingPackages(): string[] {
  const out = sh('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Status}\n', ...PACKAGES], {
    allowFail: true,
  });
  const installed = new Set(
    out
      .split('\n')
      .filter((l) => l.endsWith(' installed'))
      .map((l) => l.split(' ')[0]),
  );
  return PACKAGES.filter((p) => !installed.has(p));
}

export function installPackages(): void {
  const missing = missingPackages();
  if (missing.length === 0) return log('Debian packages: all present');
  log(`installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  sh('apt-get', ['update', '-q'], { env });
  sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env });
}

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  runtimeDir: string;
}

/** A second user with no sub-ids at all, for the single-mapping fallback. */
export const NOSUB_USER = 'hutchnosub';

export function ensureNoSubIdUser(): void {
  if (sh('id', ['-u', NOSUB_USER], { allowFail: true }).trim() === '') {
    log(`creating user ${NOSUB_USER} (no sub-ids)`);
    sh('useradd', [
      '--create-home',
      '--shell',
      '/bin/sh',
      '-K',
      'SUB_UID_COUNT=0',
      '-K',
      'SUB_GID_COUNT=0',
      NOSUB_USER,
    ]);
  }
}

export function ensureTestUser(): TestUser {
  if (sh('id', ['-u', TEST_USER], { allowFail: true }).trim() === '') {
    log(`creating user ${TEST_USER}`);
    sh('useradd', ['--create-home', '--shell', '/bin/sh', TEST_USER]);
  }
  const uid = Number(sh('id', ['-u', TEST_USER]).trim());
  const gid = Number(sh('id', ['-g', TEST_USER]).trim());
  const home = sh('getent', ['passwd', TEST_USER]).split(':')[5]!;
  return { name: TEST_USER, uid, gid, home, runtimeDir: `/run/user/${uid}` };
}

/** The host preparation itself is hutch's own job: `hutch setup`. */
export function runHutchSetup(projectDir: string, user: string): void {
  const out = sh(join(projectDir, 'bin/hutch'), ['setup', '--user', user]);
  for (const line of out.trim().split('\n')) log(line);
}

/** The test user must reach the checkout (CI may clone below a private directory). */
export function userCanRead(user: string, path: string): boolean {
  return spawnSync('runuser', ['-u', user, '--', 'test', '-r', path]).status === 0;
}

export function writeStamp(dir: string, name: string, content: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), content);
  chmodSync(join(dir, name), 0o644);
}

export function fileExists(p: string): boolean {
  return existsSync(p);
}
