/**
 * What every operation needs: who we are, where the store is, and the
 * configuration, resolved once per command from global flags, environment
 * and hutch.toml, in that order of precedence.
 */
import { join } from 'node:path';
import { loadConfig } from '../config/config.ts';
import type { HutchConfig } from '../config/config.ts';
import { resolvePaths } from '../config/paths.ts';
import type { Paths } from '../config/paths.ts';
import { enterNamespace } from '../rootless/namespace.ts';
import type { DriverOptions } from '../storage/drivers/index.ts';
import { openStore, resetAfterReboot } from '../store/store.ts';
import type { Store } from '../store/store.ts';
import { identity } from '../sys/identity.ts';
import type { Identity } from '../sys/identity.ts';
import { HutchError } from '../util/errors.ts';
import { isLogLevel, setLogLevel } from '../util/log.ts';

export interface GlobalOptions {
  root?: string | undefined;
  runroot?: string | undefined;
  storageDriver?: string | undefined;
  runtime?: string | undefined;
  logLevel?: string | undefined;
  config?: string | undefined;
}

export interface Context {
  ident: Identity;
  paths: Paths;
  config: HutchConfig;
  /** Resolved engine choices; undefined means "pick automatically". */
  storageDriver: string | undefined;
  /** The zfs driver's parent dataset ([storage] zfs_dataset, HUTCH_ZFS_DATASET). */
  zfsDataset: string | undefined;
  runtime: string | undefined;
}

export async function createContext(globals: GlobalOptions, env = process.env): Promise<Context> {
  const level = globals.logLevel ?? env.HUTCH_LOG_LEVEL;
  if (level !== undefined) {
    if (!isLogLevel(level)) {
      throw new HutchError('BAD_FLAG', `invalid log level "${level}"`, {
        hint: 'Use one of: debug, info, warn, error.',
      });
    }
    setLogLevel(level);
  }
  const ident = identity();
  const first = resolvePaths(globals, env, ident);
  const config = await loadConfig(first.configFile, first.configExplicit);
  if (globals.logLevel === undefined && env.HUTCH_LOG_LEVEL === undefined && config.engine?.log_level) {
    setLogLevel(config.engine.log_level);
  }
  const paths = config.storage?.root ? resolvePaths(globals, env, ident, config.storage.root) : first;
  return {
    ident,
    paths,
    config,
    storageDriver: globals.storageDriver ?? env.HUTCH_STORAGE_DRIVER ?? config.storage?.driver,
    zfsDataset: env.HUTCH_ZFS_DATASET ?? config.storage?.zfs_dataset,
    runtime: globals.runtime ?? env.HUTCH_RUNTIME ?? config.engine?.runtime,
  };
}

/** Enter the user namespace (rootless) and open the store: the start of every stateful command. */
export function openStateful(ctx: Context): Store {
  resetAfterReboot(ctx.paths);
  enterNamespace(ctx.paths);
  return openStore(ctx.paths, { rebootChecked: true });
}

/** What the storage driver needs from the context to be chosen or opened. */
export function driverOptions(ctx: Context): DriverOptions {
  return {
    rootless: ctx.ident.rootless,
    zfsDataset: ctx.zfsDataset,
    probeDir: join(ctx.paths.runroot, 'probes'),
  };
}

/** Variables naming the store, for `hutch unshare` and hooks. */
export function storeEnv(ctx: Context): Record<string, string> {
  return {
    HUTCH_ROOT: ctx.paths.root,
    HUTCH_RUNROOT: ctx.paths.runroot,
    HUTCH_ROOTLESS: ctx.ident.rootless ? '1' : '0',
  };
}
