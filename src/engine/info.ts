/**
 * `hutch info`: what hutch would use here and why, without changing
 * anything (it neither builds the namespace nor creates the store).
 */
import { readFileSync } from 'node:fs';
import { cgroupLayout } from '../host/cgroups.ts';
import { distro } from '../host/distro.ts';
import { kernelVersion, selinuxEnforcing, zfsModuleVersion } from '../host/kernel.ts';
import { chooseOciRuntime } from '../host/oci-runtime.ts';
import { chooseStorageDriver, storeFilesystem } from '../host/storage.ts';
import { deviceAccess } from '../host/access.ts';
import { toolInfo } from '../host/tools.ts';
import { realHost } from '../host/view.ts';
import { lookupUser } from '../host/passwd.ts';
import { livePausePid, plannedMapping } from '../rootless/namespace.ts';
import { probeBtrfs } from '../storage/drivers/btrfs-probe.ts';
import { probeZfs, recordedDataset } from '../storage/drivers/zfs-probe.ts';
import { STORE_FORMAT, storeMetaPath } from '../store/store.ts';
import { readIfExists } from '../util/fs-atomic.ts';
import type { Context } from './context.ts';
import { versionInfo } from './version.ts';

export interface IdMap {
  ContainerID: number;
  HostID: number;
  Size: number;
}

function triplesToMaps(t: readonly number[]): IdMap[] {
  const out: IdMap[] = [];
  for (let i = 0; i + 2 < t.length; i += 3) {
    const [c = 0, h = 0, n = 0] = t.slice(i, i + 3);
    out.push({ ContainerID: c, HostID: h, Size: n });
  }
  return out;
}

function mapFile(text: string): number[] {
  return text.split(/\s+/).filter(Boolean).map(Number);
}

function idMappings(ctx: Context): { UidMap: IdMap[]; GidMap: IdMap[]; Source: string } {
  if (!ctx.ident.rootless) return { UidMap: [], GidMap: [], Source: 'rootful: no user namespace' };
  const pid = livePausePid(ctx.paths);
  if (pid !== undefined) {
    try {
      return {
        UidMap: triplesToMaps(mapFile(readFileSync(`/proc/${pid}/uid_map`, 'utf8'))),
        GidMap: triplesToMaps(mapFile(readFileSync(`/proc/${pid}/gid_map`, 'utf8'))),
        Source: `the running namespace (pause process ${pid})`,
      };
    } catch {
      // fall through to the plan
    }
  }
  const plan = plannedMapping(ctx.ident.uid, ctx.ident.gid);
  return {
    UidMap: triplesToMaps(plan.uid),
    GidMap: triplesToMaps(plan.gid),
    Source: plan.single ? 'no sub-ids: only your own id (see hutch doctor)' : '/etc/subuid and /etc/subgid',
  };
}

function tool(host: ReturnType<typeof realHost>, name: string): { Path: string; Version: string } {
  const t = toolInfo(host, name);
  return { Path: t.path ?? '', Version: t.version ?? '' };
}

/**
 * What `[storage] zfs_dataset` decides for a store still to be made: zfs
 * when rootful (or why it cannot be), nothing rootless, where it is
 * passed over for the automatic choice.
 */
function zfsChoice(
  ctx: Context,
  recorded: string | undefined,
): { driver: string | undefined; reason: string } | undefined {
  if (recorded !== undefined || ctx.storageDriver !== undefined || ctx.zfsDataset === undefined)
    return undefined;
  if (ctx.ident.rootless) return undefined;
  const probe = probeZfs(ctx.zfsDataset, false);
  return probe.ok
    ? {
        driver: 'zfs',
        reason: `zfs_dataset is set to ${probe.dataset} in hutch.toml: a dataset per layer, clones for containers`,
      }
    : {
        driver: 'zfs',
        reason: `zfs_dataset is set, but the zfs driver cannot work: ${probe.reason}. ${probe.hint}`,
      };
}

export function info(ctx: Context): Record<string, unknown> {
  const host = realHost({ path: process.env.PATH });
  const layout = cgroupLayout(host);
  const runtime = chooseOciRuntime(host, ctx.runtime);
  const fs = storeFilesystem(host, ctx.paths.root);
  const user = { uid: ctx.ident.uid, gid: ctx.ident.gid, name: lookupUser(ctx.ident.uid)?.name ?? '' };
  const meta = (() => {
    try {
      return JSON.parse(readIfExists(storeMetaPath(ctx.paths.root)) ?? 'null') as {
        format?: number;
        driver?: string;
      } | null;
    } catch {
      return null;
    }
  })();
  const recorded = meta?.driver;
  // The btrfs test makes (and deletes) a subvolume: only when the choice is still to be made.
  const btrfs =
    fs.fsType === 'btrfs' && recorded === undefined && ctx.storageDriver === undefined
      ? probeBtrfs(ctx.paths.root, ctx.ident.rootless)
      : undefined;
  const auto = chooseStorageDriver({
    fsType: fs.fsType,
    rootless: ctx.ident.rootless,
    kernel: kernelVersion(host),
    selinuxEnforcing: selinuxEnforcing(host),
    zfsVersion: zfsModuleVersion(host),
    probe: undefined,
    fuseOverlayfs: host.which('fuse-overlayfs') !== undefined,
    fuseDevice: deviceAccess(host, '/dev/fuse', user).usable,
    btrfs,
  });
  const zfs = zfsChoice(ctx, recorded);
  const driver = recorded ?? ctx.storageDriver ?? zfs?.driver;
  const pasta = tool(host, 'pasta');
  const slirp = tool(host, 'slirp4netns');
  return {
    Host: {
      Arch: process.arch === 'x64' ? 'amd64' : process.arch,
      Kernel: host.kernelRelease(),
      OS: distro(host).prettyName ?? 'linux',
      Rootless: ctx.ident.rootless,
      User: user,
      IdMappings: idMappings(ctx),
      Cgroups: {
        Mode: layout.mode,
        V2Controllers: layout.v2Controllers,
        V1Controllers: layout.v1.flatMap((h) => h.controllers),
      },
      OciRuntime: {
        Name: runtime.name,
        Path: runtime.path ?? '',
        Version: runtime.version ?? '',
        Reason: runtime.reason,
      },
      Conmon: tool(host, 'conmon'),
      Network: {
        Default: pasta.Path ? 'pasta' : slirp.Path ? 'slirp4netns' : 'none',
        Pasta: pasta,
        Slirp4netns: slirp,
      },
      Seccomp: {
        Profile: host.exists('/usr/share/containers/seccomp.json')
          ? '/usr/share/containers/seccomp.json'
          : '',
      },
    },
    Store: {
      GraphRoot: ctx.paths.root,
      RunRoot: ctx.paths.runroot,
      ConfigFile: ctx.paths.configFile,
      Filesystem: fs.fsType ?? 'unknown',
      GraphDriverName: driver ?? auto.driver,
      DriverReason:
        recorded !== undefined
          ? 'recorded in the store (store.json) when it was made: a store keeps its driver'
          : ctx.storageDriver !== undefined
            ? 'asked for by --storage-driver, HUTCH_STORAGE_DRIVER or hutch.toml'
            : zfs !== undefined
              ? zfs.reason
              : ctx.ident.rootless && ctx.zfsDataset !== undefined
                ? `${auto.reason}; zfs_dataset is set but not used: only root may create and mount ZFS datasets`
                : auto.reason,
      ...(driver === 'zfs' ? { ZfsDataset: recordedDataset(ctx.paths.root) ?? ctx.zfsDataset ?? '' } : {}),
      Format: meta?.format ?? STORE_FORMAT,
    },
    Version: versionInfo().Client,
  };
}
