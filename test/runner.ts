/**
 * The whole test run. As root (as CI runs it) it first prepares the host as
 * an admin would (test/setup/host.ts), starts the loopback registry with the
 * locally made test images, then runs:
 *   unit      pure logic, as the invoking user
 *   rootful   integration tests as root
 *   rootless  integration tests as the unprivileged test user
 * and prints one closing line: "tests: N passed, N failed, N skipped".
 * As a normal user it runs what it can and says what it skipped and why.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  TEST_USER,
  ensureNoSubIdUser,
  ensureTestUser,
  installPackages,
  runHutchSetup,
  userCanRead,
} from './setup/host.ts';
import type { TestUser } from './setup/host.ts';
import { ensureTestBtrfs } from './setup/btrfs.ts';
import type { TestBtrfs } from './setup/btrfs.ts';
import { ensureTestZfs } from './setup/zfs.ts';

const projectDir = dirname(dirname(fileURLToPath(import.meta.url)));
const unitOnly = process.argv.includes('--unit-only');
const isRoot = process.getuid?.() === 0;
const stateDir = isRoot
  ? '/var/tmp/hutch-test'
  : join(process.env.TMPDIR ?? '/tmp', `hutch-test-${process.getuid?.()}`);
// Not 5000: Debian's docker-registry service may hold that where an init system starts it.
const REGISTRY_PORT = '5055';
const notes: string[] = [];
let rootlessProjectDir = projectDir;
/** The loop-device btrfs filesystems of the btrfs driver's tests, when this machine could make them. */
let btrfs: TestBtrfs | undefined;
/** The parent dataset of the zfs driver's tests on a zfs-fuse pool, when this machine could make one. */
let zfsDataset: string | undefined;

interface Totals {
  pass: number;
  fail: number;
  skip: number;
}
const totals: Totals = { pass: 0, fail: 0, skip: 0 };

function say(msg: string): void {
  process.stdout.write(`\n=== ${msg}\n`);
}

function runNode(args: string[], env: NodeJS.ProcessEnv): number {
  return spawnSync(process.execPath, args, { stdio: 'inherit', cwd: projectDir, env }).status ?? 1;
}

function prepareHost(): TestUser {
  say('preparing the host (as root)');
  installPackages();
  // Record what `hutch doctor` says before hutch setup repairs anything.
  const doctor = spawnSync(join(projectDir, 'bin/hutch'), ['doctor', '--format', 'json'], {
    encoding: 'utf8',
  });
  if (doctor.stdout.trim().startsWith('{'))
    writeFileSync(join(stateDir, 'doctor-before.json'), doctor.stdout);
  const user = ensureTestUser();
  ensureNoSubIdUser();
  runHutchSetup(projectDir, user.name);
  try {
    btrfs = ensureTestBtrfs([user, { uid: 0, gid: 0 }], (m) => process.stdout.write(`[setup] ${m}\n`));
  } catch (e) {
    notes.push(`btrfs driver tests skipped: no loop-device btrfs (${(e as Error).message})`);
  }
  try {
    zfsDataset = ensureTestZfs(stateDir, (m) => process.stdout.write(`[setup] ${m}\n`));
  } catch (e) {
    notes.push(`zfs driver tests skipped: no zfs-fuse pool (${(e as Error).message})`);
  }
  if (!userCanRead(user.name, join(projectDir, 'dist/hutch.cjs'))) {
    // CI may clone below a private directory: give the test user a copy.
    const copy = join(stateDir, 'tree');
    say(`${TEST_USER} cannot read ${projectDir}: running its tests from a copy in ${copy}`);
    rmSync(copy, { recursive: true, force: true });
    const cp = spawnSync('cp', ['-a', projectDir, copy], { stdio: 'inherit' });
    if (cp.status !== 0) throw new Error(`copying the project to ${copy} failed`);
    rootlessProjectDir = copy;
  }
  say('starting the test registry and building test images');
  const images = runNode(
    [
      'test/setup/images-cli.ts',
      '--cache',
      '/var/cache/hutch-test',
      '--data',
      join(stateDir, 'registry'),
      '--port',
      REGISTRY_PORT,
    ],
    process.env,
  );
  if (images !== 0) throw new Error('building the test images failed');
  say('starting the test hosts (network namespaces joined by veth pairs)');
  if (runNode(['test/setup/testhosts.ts', '--state', stateDir], process.env) !== 0) {
    throw new Error('starting the test hosts failed');
  }
  return user;
}

function stopRegistry(): void {
  runNode(['test/setup/images-cli.ts', '--data', join(stateDir, 'registry'), '--stop'], process.env);
  runNode(['test/setup/testhosts.ts', '--state', stateDir, '--stop'], process.env);
}

/** Runs one group of test files, teeing a TAP copy to count results. */
function runGroup(name: string, pattern: string, asUser?: TestUser): void {
  say(`${name} tests${asUser ? ` as ${asUser.name}` : ''}`);
  const tap = join(stateDir, `${name}.tap`);
  writeFileSync(tap, '');
  chmodSync(tap, 0o666);
  const nodeArgs = [
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    pattern,
  ];
  const env: NodeJS.ProcessEnv = {
    ...(asUser
      ? {
          HOME: asUser.home,
          USER: asUser.name,
          LOGNAME: asUser.name,
          PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
          XDG_RUNTIME_DIR: asUser.runtimeDir,
          LANG: 'C.UTF-8',
        }
      : process.env),
    HUTCH_TEST_STATE: stateDir,
    HUTCH_TEST_REGISTRY: `127.0.0.1:${REGISTRY_PORT}`,
    HUTCH_TEST_IMAGES: '/var/cache/hutch-test/test-images.json',
    ...(isRoot && !unitOnly ? { HUTCH_TEST_HOSTS: join(stateDir, 'testhosts.json') } : {}),
    ...(btrfs ? { HUTCH_TEST_BTRFS: btrfs.mountPoint, HUTCH_TEST_BTRFS_STRICT: btrfs.strictMountPoint } : {}),
    ...(zfsDataset ? { HUTCH_TEST_ZFS: zfsDataset } : {}),
    HUTCH_PROJECT: asUser ? rootlessProjectDir : projectDir,
  };
  const cwd = asUser ? rootlessProjectDir : projectDir;
  const status = asUser
    ? (spawnSync(
        'runuser',
        [
          '-u',
          asUser.name,
          '--',
          'env',
          '-i',
          ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
          join(cwd, 'node_modules/node/bin/node'),
          ...nodeArgs,
        ],
        {
          stdio: 'inherit',
          cwd,
        },
      ).status ?? 1)
    : runNode(nodeArgs, env);
  const text = readFileSync(tap, 'utf8');
  const count = (key: string): number => Number(new RegExp(`^# ${key} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  const group = {
    pass: count('pass'),
    fail: count('fail') + count('cancelled'),
    // Every "# SKIP" line: skipped tests, and skipped suites, which node's own count leaves out.
    skip: (text.match(/^\s*ok \d+ - .*# SKIP/gm)?.length ?? 0) + count('todo'),
  };
  if (status !== 0 && group.fail === 0) group.fail = 1; // a crash before any result is a failure too
  totals.pass += group.pass;
  totals.fail += group.fail;
  totals.skip += group.skip;
}

async function main(): Promise<void> {
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  chmodSync(stateDir, 0o755);
  let user: TestUser | undefined;
  try {
    if (isRoot && !unitOnly) user = prepareHost();
    runGroup('unit', 'test/unit/**/*.test.ts');
    if (!unitOnly) {
      if (isRoot) runGroup('rootful', 'test/integration/rootful/**/*.test.ts');
      else notes.push('rootful integration tests skipped: run `npm test` as root to include them');
      if (user) runGroup('rootless', 'test/integration/rootless/**/*.test.ts', user);
      else {
        notes.push('rootless tests run as the invoking user: the host was not prepared (not root)');
        runGroup('rootless', 'test/integration/rootless/**/*.test.ts');
      }
    }
  } finally {
    if (isRoot && !unitOnly) stopRegistry();
  }
  say('summary');
  for (const n of notes) process.stdout.write(`note: ${n}\n`);
  if (totals.skip > 0)
    process.stdout.write(`${totals.skip} test(s) skipped: each says why above (search for "# SKIP")\n`);
  process.stdout.write(`tests: ${totals.pass} passed, ${totals.fail} failed, ${totals.skip} skipped\n`);
  process.exitCode = totals.fail > 0 ? 1 : 0;
}

await main();
