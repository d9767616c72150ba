/** The store's filesystem, a real overlay test mount, and the storage driver hutch picks. */
import { installCommand } from '../../host/distro.ts';
import { selinuxEnforcing, zfsModuleVersion } from '../../host/kernel.ts';
import {
  OVERLAY_UPPER_OK,
  chooseStorageDriver,
  kernelOverlayVerdict,
  storeFilesystem,
} from '../../host/storage.ts';
import type { OverlayFacts } from '../../host/storage.ts';
import type { Facts } from './facts.ts';
import type { BtrfsProbeResult, Check, DoctorContext, OverlayProbeResult, ZfsProbeResult } from './types.ts';
import { sudo } from './types.ts';

const NO_OVERLAY_UPPER = new Set(['nfs', 'cifs', 'smb2', '9p', 'afs', 'overlay', 'fuse', 'aufs', 'ecryptfs']);

/** Moving the store to a local filesystem overlay takes: /var/tmp when it is one (not tmpfs: it must survive reboots). */
function relocation(ctx: DoctorContext): string {
  const name = ctx.rootless ? `hutch-${ctx.user.uid}` : 'hutch';
  const how = '# or root = "..." under [storage] in hutch.toml';
  for (const dir of ['/var/tmp', '/srv', '/opt']) {
    const fs = ctx.host.statfsType(dir);
    if (fs !== undefined && fs !== 'tmpfs' && OVERLAY_UPPER_OK.includes(fs)) {
      return `export HUTCH_ROOT=${dir}/${name}   ${how} (${dir} is on ${fs})`;
    }
  }
  return `export HUTCH_ROOT=/PATH/ON/LOCAL/EXT4-OR-XFS/${name}   ${how}`;
}

export function storeChecks(ctx: DoctorContext, facts: Facts): Check[] {
  const topic = 'Storage';
  const fs = storeFilesystem(ctx.host, ctx.storePath);
  const zfsVersion = fs.fsType === 'zfs' ? zfsModuleVersion(ctx.host) : undefined;
  const where =
    fs.checkedPath === ctx.storePath.replace(/\/+$/, '')
      ? ctx.storePath
      : `${ctx.storePath} (not created yet; checked ${fs.checkedPath})`;
  const fsName =
    fs.fsType === 'zfs'
      ? `zfs (OpenZFS ${zfsVersion ?? 'version unknown'})`
      : (fs.fsType ?? 'an unknown filesystem');
  const checks: Check[] = [
    {
      id: 'store.filesystem',
      topic,
      title: 'Store filesystem',
      status: 'INFO',
      reason: `${where} is on ${fsName}`,
    },
  ];

  const overlayFacts: OverlayFacts = {
    fsType: fs.fsType,
    rootless: ctx.rootless,
    kernel: facts.kernel(),
    selinuxEnforcing: selinuxEnforcing(ctx.host),
    zfsVersion,
  };
  const verdict = kernelOverlayVerdict(overlayFacts);
  let probe: OverlayProbeResult | undefined;
  if (verdict.possible !== 'no' && ctx.probeOverlay) {
    probe = ctx.probeOverlay();
    const how = ctx.rootless ? 'kernel overlay with userxattr, in a user namespace' : 'kernel overlay';
    const at = probe.dir ? ` in ${probe.dir}` : '';
    checks.push(
      probe.ok
        ? {
            id: 'store.overlay-probe',
            topic,
            title: 'Overlay test mount',
            status: 'PASS',
            reason: `a test mount of ${how}${at} worked`,
          }
        : {
            id: 'store.overlay-probe',
            topic,
            title: 'Overlay test mount',
            status: 'WARN',
            reason: `a test mount of ${how}${at} failed: ${probe.error ?? 'unknown error'}`,
          },
    );
  }

  const btrfs = fs.fsType === 'btrfs' ? ctx.probeBtrfs?.() : undefined;
  if (fs.fsType === 'btrfs') checks.push(btrfsCheck(btrfs));

  const fuse = facts.tool('fuse-overlayfs').path !== undefined;
  const fuseDevice = facts.device('/dev/fuse').usable;
  const zfs = ctx.zfsDataset === undefined ? undefined : ctx.probeZfs?.();
  if (ctx.zfsDataset !== undefined) checks.push(zfsCheck(ctx, zfs));
  const auto = chooseStorageDriver({ ...overlayFacts, probe, fuseOverlayfs: fuse, fuseDevice, btrfs });
  // A configured dataset decides rootful (storage/drivers/index.ts); rootless it is passed over.
  const choice =
    ctx.zfsDataset !== undefined && !ctx.rootless
      ? { ...auto, driver: 'zfs', reason: `zfs_dataset is set to ${ctx.zfsDataset} in hutch.toml` }
      : auto;
  const s = sudo(ctx);
  const elsewhere = relocation(ctx);
  const fixes: string[] = [];
  const fast = choice.driver === 'overlay' || choice.driver === 'btrfs' || choice.driver === 'zfs';
  if (!fast) {
    if (fs.fsType !== undefined && NO_OVERLAY_UPPER.has(fs.fsType)) fixes.push(elsewhere);
    if (fs.fsType === 'zfs' && verdict.possible === 'no')
      fixes.push('# upgrade OpenZFS to 2.2 or later, or keep the store off ZFS:', elsewhere);
    if (!fuse) fixes.push(installCommand('fuse-overlayfs', facts.distro().family, ctx.user.uid === 0));
    else if (!fuseDevice) fixes.push(`${s}chmod 0666 /dev/fuse`);
  }
  const recorded = recordedDriver(ctx);
  if (recorded !== undefined && recorded !== choice.driver) {
    // The store keeps the driver it was made with: say so, and what a new store would get.
    const faster = fast && (recorded === 'vfs' || recorded === 'fuse-overlayfs');
    checks.push({
      id: 'store.driver',
      topic,
      title: 'Storage driver',
      status: faster || recorded === 'vfs' ? 'WARN' : 'PASS',
      reason: `${recorded}: recorded in the store when it was made; a new store here would get ${choice.driver}: ${choice.reason}`,
      ...(faster
        ? {
            fix: `# to move to ${choice.driver}: hutch save -o images.tar IMAGE...; hutch system reset; hutch load -i images.tar`,
          }
        : {}),
    });
    return checks;
  }
  checks.push({
    id: 'store.driver',
    topic,
    title: 'Storage driver',
    status: fast ? 'PASS' : 'WARN',
    reason: `${choice.driver}: ${choice.reason}`,
    ...(fixes.length > 0 ? { fix: [...new Set(fixes)].join('\n') } : {}),
  });

  return checks;
}

/** The driver the store recorded when it was made (store.json), if it exists yet. */
function recordedDriver(ctx: DoctorContext): string | undefined {
  const text = ctx.host.readFile(`${ctx.storePath.replace(/\/+$/, '')}/store.json`);
  if (text === undefined) return undefined;
  try {
    const driver = (JSON.parse(text) as { driver?: unknown }).driver;
    return typeof driver === 'string' ? driver : undefined;
  } catch {
    return undefined;
  }
}

/** The zfs driver's parent dataset, where zfs_dataset is set. */
function zfsCheck(ctx: DoctorContext, probe: ZfsProbeResult | undefined): Check {
  const base = { id: 'store.zfs', topic: 'Storage' as const, title: 'ZFS parent dataset' };
  if (probe === undefined) {
    return {
      ...base,
      status: 'INFO',
      reason: `zfs_dataset is ${ctx.zfsDataset}; the dataset was not checked`,
    };
  }
  if (probe.ok) {
    return {
      ...base,
      status: 'PASS',
      reason: `${probe.dataset} exists: the zfs driver keeps a dataset per layer under it`,
    };
  }
  return {
    ...base,
    // Rootless, the setting is simply not used; rootful, a new store would fail to open.
    status: ctx.rootless ? 'INFO' : 'FAIL',
    reason: ctx.rootless
      ? `zfs_dataset is set but not used: ${probe.reason}`
      : `the zfs driver cannot work here: ${probe.reason}`,
    fix: probe.hint,
  };
}

/** The btrfs driver's own test, where the store is on btrfs. */
function btrfsCheck(probe: BtrfsProbeResult | undefined): Check {
  const base = { id: 'store.btrfs', topic: 'Storage' as const, title: 'btrfs subvolumes' };
  if (probe === undefined) {
    return { ...base, status: 'INFO', reason: 'the store is on btrfs; the subvolume test was not made' };
  }
  if (probe.ok) {
    return {
      ...base,
      status: 'PASS',
      reason: 'a test subvolume was created and deleted in the store: the btrfs driver works here',
    };
  }
  return {
    ...base,
    status: 'WARN',
    reason: `the btrfs driver cannot work here: ${probe.reason}`,
    fix: probe.hint,
  };
}
