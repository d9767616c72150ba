/**
 * Whether the fuse-overlayfs driver can work for a store: the program is
 * installed, /dev/fuse can be opened, and a real mount in the store's
 * directory takes a new file and a deletion (a whiteout in the upper
 * directory) and goes away with its daemon. Run where the driver runs: in
 * hutch's user namespace (rootless) or as root.
 */
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { errnoCode } from '../../util/errors.ts';
import { TEMP_MARK } from '../../util/fs-atomic.ts';
import {
  INSTALL_HINT,
  fuseOverlayfsPath,
  mountFuseOverlay,
  unmountFuseOverlay,
} from './fuse-overlayfs-tool.ts';

export type FuseProbe = { ok: true } | { ok: false; reason: string; hint: string };

const FUSE_DEVICE = '/dev/fuse';

/** Whether this process may open /dev/fuse, and if not, why and what to do. */
export function fuseDeviceProblem(device = FUSE_DEVICE): { reason: string; hint: string } | undefined {
  try {
    accessSync(device, constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      return {
        reason: `${device} does not exist (the fuse kernel module is not loaded, or this is a container without it)`,
        hint: 'As root: modprobe fuse (and add fuse to /etc/modules-load.d/ for the next boot); in a container, pass --device /dev/fuse.',
      };
    }
    return {
      reason: `${device} cannot be opened by this user (${(e as Error).message})`,
      hint: `As root: chmod 0666 ${device} (distributions ship it so; a udev rule keeps the mode across boots).`,
    };
  }
}

function existingDir(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

export function probeFuseOverlayfs(storeRoot: string): FuseProbe {
  if (fuseOverlayfsPath() === undefined) {
    return { ok: false, reason: 'fuse-overlayfs is not installed', hint: INSTALL_HINT };
  }
  const device = fuseDeviceProblem();
  if (device) return { ok: false, ...device };
  const base = existingDir(storeRoot);
  let dir: string;
  try {
    dir = mkdtempSync(join(base, `${TEMP_MARK}fuse-overlayfs-probe-`));
  } catch (e) {
    return {
      ok: false,
      reason: `cannot make a test directory in ${base}: ${(e as Error).message}`,
      hint: `Make ${base} writable for this user.`,
    };
  }
  const merged = join(dir, 'merged');
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'lower', 'old'), 'old\n');
    mountFuseOverlay({
      lower: ['lower'],
      upper: { dir: join(dir, 'upper'), work: join(dir, 'work') },
      mountPoint: merged,
      cwd: dir,
    });
    try {
      writeFileSync(join(merged, 'new'), 'new\n');
      unlinkSync(join(merged, 'old'));
    } finally {
      unmountFuseOverlay(merged, dir);
    }
    if (!existsSync(join(dir, 'upper', 'new'))) {
      return {
        ok: false,
        reason: 'a test mount of fuse-overlayfs did not write to its upper directory',
        hint: 'Run `hutch doctor`, or use another --storage-driver.',
      };
    }
    return { ok: true };
  } catch (e) {
    return {
      ok: false,
      reason: `a test mount of fuse-overlayfs failed: ${(e as Error).message}`,
      hint: 'Run `hutch doctor`, or use another --storage-driver.',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
