/**
 * `hutch create` (and the first half of `run`): find or pull the image,
 * check every flag, and record the container. Nothing is mounted or started
 * here; a bad flag fails before anything is written.
 */
import { randomHex } from '../../util/random.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostnameFile, parseAddHost, validHostname } from '../../runtime/etc-files.ts';
import { parseEnvFile, parseEnvFlag } from '../../runtime/env.ts';
import {
  checkDuplicates,
  parseMountFlag,
  parseTmpfsFlag,
  parseVolumeFlag,
} from '../../runtime/containers/mounts.ts';
import type { RunOptions } from '../../runtime/containers/options.ts';
import { NAME_PATTERN } from '../../runtime/containers/store.ts';
import { EMPTY_STATE } from '../../runtime/containers/types.ts';
import type {
  ContainerRecord,
  HealthConfig,
  MountRecord,
  NetworkAttachment,
  RestartPolicy,
} from '../../runtime/containers/types.ts';
import { parseBytes, parseDevice, parseSysctls, parseUlimit } from '../../runtime/resources.ts';
import { parseSecurityOpts, resolveCapabilities } from '../../runtime/security.ts';
import { parseUserns, usernsMappings } from '../../runtime/userns.ts';
import type { UsernsChoice } from '../../runtime/userns.ts';
import { ensureShiftedLayer } from '../../storage/shifted.ts';
import { namespaceRanges } from '../../sys/identity.ts';
import { findImage } from '../../image/lookup.ts';
import type { ImageRecord } from '../../image/store/db.ts';
import type { ImageConfig } from '../../image/types.ts';
import { HutchError } from '../../util/errors.ts';
import { log } from '../../util/log.ts';
import { which } from '../../util/which.ts';
import { defaultNetworkMode, parseNetworkMode } from '../../network/mode.ts';
import type { NetworkMode } from '../../network/mode.ts';
import { parseAllow } from '../../network/allow.ts';
import { checkAttachable } from '../../network/bridge.ts';
import { NetworkStore } from '../../network/store.ts';
import { checkDistinct, parseExposed, parsePublish } from '../../network/ports.ts';
import type { PortBinding } from '../../network/ports.ts';
import { parseGoDuration } from '../../runtime/logs/time-filter.ts';
import { configOf } from '../images.ts';
import type { PullOptions } from '../pull.ts';
import type { Containers } from './open.ts';
import { parseSignal } from '../../runtime/oci/signals.ts';

export interface HealthFlags {
  cmd?: string | undefined;
  interval?: string | undefined;
  timeout?: string | undefined;
  retries?: number | undefined;
  startPeriod?: string | undefined;
  none: boolean;
}

export interface CreateRequest {
  image: string;
  command: string[];
  name: string | undefined;
  entrypoint: string | undefined;
  pull: 'missing' | 'always' | 'never';
  platform: string | undefined;
  pullProgress: PullOptions['progress'];
  tty: boolean;
  interactive: boolean;
  rm: boolean;
  envFlags: string[];
  envFiles: string[];
  labels: string[];
  labelFiles: string[];
  volumes: string[];
  mounts: string[];
  tmpfs: string[];
  volumesFrom: string[];
  restart: string | undefined;
  logDriver: string | undefined;
  logOpts: string[];
  health: HealthFlags;
  stopSignal: string | undefined;
  stopTimeout: number | undefined;
  cidfile: string | undefined;
  expose: string[];
  /** -p values as given, and -P. */
  publish: string[];
  publishAll: boolean;
  /** --publish-allow values as given. */
  publishAllow: string[];
  /** --network-alias and --ip, for user networks. */
  networkAliases: string[];
  ip: string | undefined;
  options: RunOptions;
}

/** "", "default" and "private" become the configured or detected default, so the record says what runs. */
export function resolveNetworkValue(
  value: string,
  configured: string | undefined,
  rootless: boolean,
): string {
  if (value !== '' && value !== 'default' && value !== 'private') return value;
  return defaultNetworkMode(configured, (tool) => which(tool) !== undefined, rootless);
}

/** -p as bindings; refused or dropped where the network has no ports of its own, as docker does. */
function publishedPorts(req: CreateRequest, mode: NetworkMode): PortBinding[] {
  const bindings = req.publish.flatMap(parsePublish);
  checkDistinct(bindings);
  if (bindings.length === 0 && !req.publishAll) return bindings;
  if (mode.kind === 'container' || mode.kind === 'ns') {
    throw bad(
      `ports cannot be published with --network ${req.options.network}: the container uses another's network`,
      'Publish the ports on the container whose network it joins.',
    );
  }
  if (mode.kind === 'host' || mode.kind === 'none') {
    log.warn(`published ports are discarded with --network ${mode.kind}`);
    return [];
  }
  return bindings;
}

/** The user networks of --network NAME[,NAME...], which must exist; --ip is for the first, aliases for all. */
function userNetworks(c: Containers, req: CreateRequest, mode: NetworkMode): NetworkAttachment[] | undefined {
  if (mode.kind !== 'networks') {
    if (req.networkAliases.length > 0 || req.ip !== undefined) {
      throw bad(
        `--network-alias and --ip need a user network, not --network ${req.options.network}`,
        'Create one (hutch network create NAME) and run with --network NAME.',
      );
    }
    return undefined;
  }
  const store = new NetworkStore(c.ctx.paths.root);
  return mode.names.map((name, i) => {
    const net = store.get(name);
    checkAttachable(net, i === 0 ? req.ip : undefined);
    return { name: net.name, aliases: req.networkAliases, ip: i === 0 ? req.ip : undefined };
  });
}

/** --publish-allow, normalized; only where clients can be told apart (pasta keeps their addresses). */
function publishAllow(req: CreateRequest, mode: NetworkMode, bindings: PortBinding[]): string[] {
  const allow = [...new Set(req.publishAllow.map(parseAllow))];
  if (allow.length === 0) return allow;
  if (mode.kind !== 'pasta' && mode.kind !== 'networks') {
    throw bad(
      `--publish-allow needs --network pasta, not ${req.options.network}`,
      mode.kind === 'slirp4netns'
        ? 'slirp4netns hands the container every connection from one address, so clients cannot be told apart: use pasta.'
        : 'It limits the clients of published ports, which only pasta networks have here.',
    );
  }
  if (bindings.length === 0 && !req.publishAll) {
    throw bad('--publish-allow without a published port', 'Publish ports with -p or -P.');
  }
  return allow;
}

function bad(message: string, hint?: string): HutchError {
  return new HutchError('BAD_FLAG', message, hint ? { hint } : {});
}

export function parseRestart(value: string | undefined): RestartPolicy {
  if (!value || value === 'no') return { name: 'no', maximumRetryCount: 0 };
  const [name, count] = value.split(':');
  if (name === 'on-failure') {
    const n = count === undefined ? 0 : Number(count);
    if (!Number.isInteger(n) || n < 0)
      throw bad(`--restart ${value}: the retry count must be a whole number`);
    return { name, maximumRetryCount: n };
  }
  if ((name === 'always' || name === 'unless-stopped') && count === undefined)
    return { name, maximumRetryCount: 0 };
  throw bad(`invalid restart policy "${value}"`, 'Use no, on-failure[:N], always or unless-stopped.');
}

function parseLabels(list: string[], files: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = [
    ...files.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('#')),
    ),
    ...list,
  ];
  for (const l of lines) {
    const eq = l.indexOf('=');
    const key = eq < 0 ? l : l.slice(0, eq);
    if (!key) throw bad(`invalid label "${l}"`, 'Use --label KEY=VALUE.');
    out[key] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return out;
}

function healthConfig(flags: HealthFlags, image: ImageConfig): HealthConfig | undefined {
  if (flags.none) return { test: ['NONE'], intervalMs: 0, timeoutMs: 0, startPeriodMs: 0, retries: 0 };
  const fromImage = image.config?.Healthcheck as
    | { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number }
    | undefined;
  const ms = (v: string | undefined, flag: string, dflt: number): number => {
    if (v === undefined) return dflt;
    const ns = parseGoDuration(v);
    const d = ns === undefined ? undefined : Number(ns / 1_000_000n);
    if (d === undefined || d < 0)
      throw bad(`${flag} ${v}: not a duration`, 'Use Go durations such as 30s, 1m30s, 500ms.');
    return d;
  };
  const ns = (n: number | undefined, dflt: number): number => (n ? Math.round(n / 1e6) : dflt);
  let test = fromImage?.Test;
  if (flags.cmd !== undefined) test = ['CMD-SHELL', flags.cmd];
  if (!test || test.length === 0 || test[0] === 'NONE')
    return test?.[0] === 'NONE'
      ? { test: ['NONE'], intervalMs: 0, timeoutMs: 0, startPeriodMs: 0, retries: 0 }
      : undefined;
  return {
    test,
    intervalMs: ms(flags.interval, '--health-interval', ns(fromImage?.Interval, 30_000)),
    timeoutMs: ms(flags.timeout, '--health-timeout', ns(fromImage?.Timeout, 30_000)),
    startPeriodMs: ms(flags.startPeriod, '--health-start-period', ns(fromImage?.StartPeriod, 0)),
    retries: flags.retries ?? fromImage?.Retries ?? 3,
  };
}

function logDriver(value: string | undefined): ContainerRecord['hostConfig']['logDriver'] {
  const v = value ?? 'k8s-file';
  if (v === 'k8s-file' || v === 'json-file' || v === 'none' || v === 'passthrough') return v;
  throw bad(`unsupported log driver "${v}"`, 'hutch writes k8s-file logs (json-file is an alias), or none.');
}

function parseLogOpts(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of list) {
    const eq = o.indexOf('=');
    if (eq < 1) throw bad(`--log-opt ${o}: expected KEY=VALUE`);
    const key = o.slice(0, eq);
    const value = o.slice(eq + 1);
    if (key === 'max-size') parseBytes(value, '--log-opt max-size');
    else if (key !== 'max-file' && key !== 'tag' && key !== 'path')
      throw bad(`--log-opt ${key}: unknown option`, 'Known: max-size, max-file, tag, path.');
    out[key] = value;
  }
  return out;
}

/** Finds the image, pulling it when --pull says so; returns its record and config. */
export async function imageFor(
  c: Containers,
  req: Pick<CreateRequest, 'image' | 'pull' | 'platform' | 'pullProgress'>,
): Promise<{ image: ImageRecord; config: ImageConfig }> {
  let found = req.pull === 'always' ? undefined : findImage(c.images.db.read().images, req.image)?.image;
  if (!found) {
    if (req.pull === 'never') {
      throw new HutchError('NO_SUCH_IMAGE', `${req.image}: image not known`, {
        hint: 'Pull it first (hutch pull), or run with --pull missing.',
      });
    }
    const { pull } = await import('./pull.lazy.ts');
    const r = await pull(c.ctx, req.image, { platform: req.platform, progress: req.pullProgress });
    found = r.image;
  }
  return { image: found, config: configOf(c.images, found) };
}

function checkNamespaceMode(flag: string, value: string, allowed: string[]): void {
  if (allowed.includes(value) || value.startsWith('container:') || value.startsWith('ns:')) return;
  throw bad(`${flag} ${value}: not supported`, `Use one of: ${allowed.join(', ')}, container:NAME.`);
}

/** Checks the flags that would otherwise fail only at start, so `create` reports them; returns what --userns chose. */
export function validateOptions(o: RunOptions, rootless: boolean): { userns: UsernsChoice } {
  parseSecurityOpts(o.securityOpt);
  resolveCapabilities({ capAdd: o.capAdd, capDrop: o.capDrop, privileged: o.privileged, uid: 0 });
  for (const u of o.ulimits) parseUlimit(u, { rootless });
  for (const d of o.devices) parseDevice(d);
  parseSysctls(o.sysctls, {
    hostNetwork: o.network === 'host',
    hostIpc: o.ipc === 'host',
    hostUts: o.uts === 'host',
  });
  for (const h of o.addHosts) parseAddHost(h);
  if (o.hostname !== undefined && !validHostname(o.hostname)) throw bad(`invalid hostname "${o.hostname}"`);
  parseNetworkMode(o.network, 'none');
  checkNamespaceMode('--ipc', o.ipc, ['private', 'host', 'shareable', 'none', '']);
  checkNamespaceMode('--pid', o.pid, ['private', 'host', '']);
  checkNamespaceMode('--uts', o.uts, ['private', 'host', '']);
  return { userns: parseUserns(o.userns, rootless) };
}

export async function createContainer(c: Containers, req: CreateRequest): Promise<ContainerRecord> {
  if (req.name !== undefined && !NAME_PATTERN.test(req.name)) {
    throw bad(`invalid container name "${req.name}"`, 'Only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed.');
  }
  const rootless = c.ctx.ident.rootless;
  // Flags first: nothing is pulled or written for a command that cannot work.
  const restartPolicy = parseRestart(req.restart);
  if (req.rm && restartPolicy.name !== 'no')
    throw bad('--rm and --restart cannot be used together', 'Drop one of them.');
  const driver = logDriver(req.logDriver);
  const logOpts = parseLogOpts(req.logOpts);
  const stopSignal = req.stopSignal ? parseSignal(req.stopSignal).name : undefined;
  req.options.network = resolveNetworkValue(req.options.network, c.ctx.config.network?.default, rootless);
  const { userns } = validateOptions(req.options, rootless);
  const networkMode = parseNetworkMode(req.options.network, 'none');
  const portBindings = publishedPorts(req, networkMode);
  const allow = publishAllow(req, networkMode, portBindings);
  const networks = userNetworks(c, req, networkMode);
  const envFromFiles = req.envFiles.flatMap((f) => {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw bad(`--env-file ${f}: ${(e as Error).message}`);
    }
    return parseEnvFile(text, f, process.env);
  });
  const envFlags = req.envFlags
    .map((e) => parseEnvFlag(e, process.env))
    .filter((e): e is string => e !== undefined);
  const labels = parseLabels(req.labels, req.labelFiles);
  const userMounts: MountRecord[] = [
    ...req.volumes.map((v) => parseVolumeFlag(v)),
    ...req.mounts.map((m) => parseMountFlag(m)),
    ...req.tmpfs.map((t) => parseTmpfsFlag(t)),
  ];
  for (const ref of req.volumesFrom) {
    const [name, mode] = ref.split(':');
    const other = c.store.get(name!);
    for (const m of other.hostConfig.mounts) {
      if (m.type === 'tmpfs' || userMounts.some((u) => u.destination === m.destination)) continue;
      userMounts.push({ ...m, readOnly: mode === 'ro' ? true : mode === 'rw' ? false : m.readOnly });
    }
  }
  checkDuplicates(userMounts);

  const { image, config } = await imageFor(c, req);
  const ic = config.config ?? {};
  // Image VOLUMEs not covered by a user mount become anonymous volumes, as in docker.
  for (const dest of Object.keys(ic.Volumes ?? {})) {
    const clean = dest.replace(/\/+$/, '') || '/';
    if (userMounts.some((m) => m.destination === clean)) continue;
    const name = randomHex(32);
    userMounts.push({
      type: 'volume',
      source: name,
      name,
      destination: clean,
      readOnly: false,
      options: ['anonymous'],
    });
  }
  for (const m of userMounts) {
    if (m.type === 'volume' && !m.name) {
      m.name = randomHex(32);
      m.source = m.name;
      m.options = [...m.options, 'anonymous'];
    }
  }
  let entrypoint = ic.Entrypoint ?? [];
  let cmd = ic.Cmd ?? [];
  if (req.entrypoint !== undefined) {
    entrypoint = req.entrypoint === '' ? [] : [req.entrypoint];
    cmd = [];
  }
  if (req.command.length) cmd = req.command;
  if (entrypoint.length + cmd.length === 0) {
    throw new HutchError('NO_COMMAND', `no command given and the image ${req.image} sets none`, {
      hint: 'Give a command after the image name.',
    });
  }

  // Its own ID mapping: the shifted copy of the image is made (once per image and mapping) before the record exists.
  const runtime = c.runtime();
  if (userns.mode === 'nomap' && runtime.name !== 'crun') {
    // runc looks its root up as the container's root, which may not enter the user's own directories.
    throw new HutchError(
      'USERNS_UNSUPPORTED',
      `--userns nomap needs crun; this container would run on ${runtime.name}`,
      {
        hint: 'Use --runtime crun, or --userns keep-id.',
      },
    );
  }
  const idMappings =
    userns.mode === 'host' ? undefined : usernsMappings(userns, c.ctx.ident, namespaceRanges());
  const topLayer = image.layers.at(-1) ?? '';
  const shiftedLayer =
    idMappings && topLayer
      ? await ensureShiftedLayer(c.images.driver, topLayer, idMappings, c.images.blobs.ingestDir)
      : undefined;
  const keptUser =
    userns.mode === 'keep-id'
      ? `${userns.uid ?? c.ctx.ident.uid}:${userns.gid ?? c.ctx.ident.gid}`
      : undefined;

  const id = c.store.newId();
  const name = req.name ?? generatedName(id);
  const hostname = req.options.hostname ?? id.slice(0, 12);
  const record: ContainerRecord = {
    id,
    name,
    created: new Date().toISOString(),
    driver: c.images.driver.name,
    topLayer,
    ...(idMappings ? { idMappings } : {}),
    ...(shiftedLayer ? { shiftedLayer } : {}),
    runtime: runtime.name,
    config: {
      image: req.image,
      imageId: image.id,
      entrypoint,
      cmd,
      env: [...envFromFiles, ...envFlags],
      workingDir: req.options.workdir ?? ic.WorkingDir ?? '',
      // keep-id runs as the kept user unless told otherwise (podman's rule).
      user: req.options.user ?? keptUser ?? ic.User ?? '',
      hostname,
      tty: req.tty,
      openStdin: req.interactive,
      labels: { ...(ic.Labels ?? {}), ...labels },
      stopSignal: stopSignal ?? ic.StopSignal ?? 'SIGTERM',
      stopTimeout: req.stopTimeout ?? 10,
      exposedPorts: [
        ...Object.keys(ic.ExposedPorts ?? {}),
        ...req.expose.flatMap((e) => parseExposed(e).map((p) => `${p.port}/${p.protocol}`)),
      ],
      healthcheck: healthConfig(req.health, config),
    },
    hostConfig: {
      autoRemove: req.rm,
      restartPolicy,
      logDriver: driver,
      logOpts,
      networkMode: req.options.network,
      portBindings,
      publishAll: req.publishAll,
      ...(allow.length > 0 ? { publishAllow: allow } : {}),
      ...(networks ? { networks } : {}),
      readOnly: req.options.readOnly,
      privileged: req.options.privileged,
      capAdd: req.options.capAdd,
      capDrop: req.options.capDrop,
      securityOpt: req.options.securityOpt,
      init: req.options.init,
      mounts: userMounts,
      tmpfs: Object.fromEntries(req.tmpfs.map((t) => [t.split(':')[0]!, t.split(':')[1] ?? ''])),
      memory: req.options.resources.memory ? parseBytes(req.options.resources.memory, '--memory') : 0,
      memorySwap:
        req.options.resources.memorySwap && req.options.resources.memorySwap !== '-1'
          ? parseBytes(req.options.resources.memorySwap, '--memory-swap')
          : 0,
      nanoCpus: req.options.resources.cpus ? Math.round(Number(req.options.resources.cpus) * 1e9) : 0,
      cpuShares: Number(req.options.resources.cpuShares ?? 0),
      pidsLimit: Number(req.options.resources.pidsLimit ?? 0),
      shmSize: req.options.shmSize,
      extraHosts: req.options.addHosts,
      userns: req.options.userns,
      groupAdd: req.options.groupAdd,
      volumesFrom: req.volumesFrom,
      cidFile: req.cidfile,
    },
    options: req.options,
    state: { ...EMPTY_STATE },
  };
  // Image env merges at start (mergeEnv); keep the image's list for that.
  record.config.env = [...(ic.Env ?? []), ...record.config.env];
  c.store.add(record, (bundle) => {
    writeFileSync(`${bundle}/hostname`, hostnameFile(hostname));
  });
  if (req.cidfile) {
    try {
      writeFileSync(req.cidfile, id, { flag: 'wx' });
    } catch (e) {
      throw bad(`--cidfile ${req.cidfile}: ${(e as Error).message}`, 'The file must not exist yet.');
    }
  }
  return record;
}

const ADJECTIVES = [
  'brave',
  'calm',
  'eager',
  'fuzzy',
  'gentle',
  'happy',
  'jolly',
  'keen',
  'lucid',
  'merry',
  'nimble',
  'quiet',
  'rapid',
  'sharp',
  'tidy',
  'vivid',
  'witty',
  'zesty',
];
const NOUNS = [
  'badger',
  'beaver',
  'burrow',
  'coney',
  'ferret',
  'hare',
  'hedgehog',
  'kit',
  'lynx',
  'marten',
  'otter',
  'rabbit',
  'squirrel',
  'stoat',
  'vole',
  'warren',
  'weasel',
  'wombat',
];

/** docker-style adjective_noun names; the id's bytes pick them, so they differ between containers. */
export function generatedName(id: string): string {
  const a = parseInt(id.slice(0, 4), 16);
  const b = parseInt(id.slice(4, 8), 16);
  return `${ADJECTIVES[a % ADJECTIVES.length]}_${NOUNS[b % NOUNS.length]}_${id.slice(8, 12)}`;
}
