/**
 * The flags of `run` and `create` (docker's names, short forms and value
 * grammar), and their translation into the engine's CreateRequest.
 */
import type { CreateRequest } from '../../engine/containers/create.ts';
import { parseShmSize } from '../../runtime/resources.ts';
import type { OptionSpec, Parsed } from '../args/spec.ts';
import { HutchError } from '../../util/errors.ts';

const s = (long: string, description: string, short?: string, valueName = 'string'): OptionSpec => ({
  long,
  kind: 'string',
  description,
  valueName,
  ...(short ? { short } : {}),
});
const l = (long: string, description: string, short?: string): OptionSpec => ({
  long,
  kind: 'list',
  description,
  valueName: 'list',
  ...(short ? { short } : {}),
});
const b = (long: string, description: string, short?: string): OptionSpec => ({
  long,
  kind: 'bool',
  description,
  ...(short ? { short } : {}),
});

/** The limits `run`, `create` and `update` share. */
export const LIMIT_OPTIONS: OptionSpec[] = [
  s('pids-limit', 'Tune container pids limit (set -1 for unlimited)', undefined, 'int'),
  s('memory', 'Memory limit', 'm', 'bytes'),
  s('memory-swap', "Swap limit equal to memory plus swap: '-1' to enable unlimited swap", undefined, 'bytes'),
  s('memory-reservation', 'Memory soft limit', undefined, 'bytes'),
  s('cpus', 'Number of CPUs', undefined, 'decimal'),
  s('cpu-shares', 'CPU shares (relative weight)', 'c', 'int'),
  s('cpu-quota', 'Limit CPU CFS (Completely Fair Scheduler) quota', undefined, 'int'),
  s('cpu-period', 'Limit CPU CFS (Completely Fair Scheduler) period', undefined, 'int'),
  s('cpuset-cpus', 'CPUs in which to allow execution (0-3, 0,1)'),
  s('blkio-weight', 'Block IO (relative weight), between 10 and 1000, or 0 to disable', undefined, 'uint16'),
];

export const CREATE_OPTIONS: OptionSpec[] = [
  s('name', 'Assign a name to the container'),
  b('interactive', 'Keep STDIN open even if not attached', 'i'),
  b('tty', 'Allocate a pseudo-TTY', 't'),
  b('rm', 'Automatically remove the container when it exits'),
  l('env', 'Set environment variables', 'e'),
  l('env-file', 'Read in a file of environment variables'),
  s('workdir', 'Working directory inside the container', 'w'),
  s('user', 'Username or UID (format: <name|uid>[:<group|gid>])', 'u'),
  s('entrypoint', 'Overwrite the default ENTRYPOINT of the image'),
  s('hostname', 'Container host name', 'h'),
  b('init', 'Run an init inside the container that forwards signals and reaps processes'),
  l('label', 'Set meta data on a container', 'l'),
  l('label-file', 'Read in a line delimited file of labels'),
  b('read-only', "Mount the container's root filesystem as read only"),
  l('tmpfs', 'Mount a tmpfs directory'),
  l('cap-add', 'Add Linux capabilities'),
  l('cap-drop', 'Drop Linux capabilities'),
  l('security-opt', 'Security Options'),
  b('privileged', 'Give extended privileges to this container'),
  s('userns', 'User namespace to use'),
  l('ulimit', 'Ulimit options'),
  ...LIMIT_OPTIONS,
  l('device', 'Add a host device to the container'),
  l('device-read-bps', 'Limit read rate (bytes per second) from a device'),
  l('device-write-bps', 'Limit write rate (bytes per second) to a device'),
  l('device-read-iops', 'Limit read rate (IO per second) from a device'),
  l('device-write-iops', 'Limit write rate (IO per second) to a device'),
  s('log-driver', 'Logging driver for the container (k8s-file, json-file, none)'),
  l('log-opt', 'Log driver options'),
  s('restart', 'Restart policy to apply when a container exits'),
  s('health-cmd', 'Command to run to check health'),
  s('health-interval', 'Time between running the check (ms|s|m|h)', undefined, 'duration'),
  s('health-timeout', 'Maximum time to allow one check to run (ms|s|m|h)', undefined, 'duration'),
  s('health-retries', 'Consecutive failures needed to report unhealthy', undefined, 'int'),
  s(
    'health-start-period',
    'Start period for the container to initialize before counting retries',
    undefined,
    'duration',
  ),
  b('no-healthcheck', 'Disable any container-specified HEALTHCHECK'),
  s('stop-signal', 'Signal to stop the container'),
  s('stop-timeout', 'Timeout (in seconds) to stop a container', undefined, 'int'),
  s('shm-size', 'Size of /dev/shm', undefined, 'bytes'),
  l('sysctl', 'Sysctl options'),
  s('ipc', 'IPC mode to use'),
  s('pid', 'PID namespace to use'),
  s('uts', 'UTS namespace to use'),
  l('group-add', 'Add additional groups to join'),
  s('cidfile', 'Write the container ID to the file'),
  l('add-host', 'Add a custom host-to-IP mapping (host:ip)'),
  l('dns', 'Set custom DNS servers'),
  l('dns-search', 'Set custom DNS search domains'),
  l('dns-option', 'Set DNS options'),
  l('mount', 'Attach a filesystem mount to the container'),
  l('volume', 'Bind mount a volume', 'v'),
  l('volumes-from', 'Mount volumes from the specified container(s)'),
  s('network', 'Connect a container to a network (pasta, slirp4netns, host, none, container:NAME)'),
  { long: 'net', kind: 'string', description: 'Alias of --network', hidden: true },
  l('expose', 'Expose a port or a range of ports'),
  l('publish', "Publish a container's port(s) to the host", 'p'),
  b('publish-all', 'Publish all exposed ports to random ports', 'P'),
  l('publish-allow', 'Admit only clients from this network (CIDR) to the published ports'),
  l('network-alias', 'Add a network-scoped alias for the container'),
  s('ip', 'IPv4 address on the (first) user network (e.g. 10.89.1.10)'),
  s('pull', 'Pull image before creating (always, missing, never)', undefined, 'string'),
  s('platform', 'Set platform if server is multi-platform capable'),
  b('quiet', 'Suppress the pull output', 'q'),
];

export const RUN_OPTIONS: OptionSpec[] = [
  b('detach', 'Run container in background and print container ID', 'd'),
  s('detach-keys', 'Override the key sequence for detaching a container'),
  { long: 'sig-proxy', kind: 'bool', description: 'Proxy received signals to the process', default: true },
  ...CREATE_OPTIONS,
];

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

function int(flag: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new HutchError('BAD_FLAG', `--${flag} ${String(v)}: not a whole number`);
  return n;
}

/** The values of LIMIT_OPTIONS as given (undefined: not given). */
export function limitFlags(o: Parsed['opts']) {
  return {
    memory: str(o.memory),
    memorySwap: str(o.memorySwap),
    memoryReservation: str(o.memoryReservation),
    cpus: str(o.cpus),
    cpuShares: str(o.cpuShares),
    cpuQuota: str(o.cpuQuota),
    cpuPeriod: str(o.cpuPeriod),
    cpusetCpus: str(o.cpusetCpus),
    pidsLimit: str(o.pidsLimit),
    blkioWeight: str(o.blkioWeight),
  };
}

export function createRequest(args: Parsed, pullProgress: CreateRequest['pullProgress']): CreateRequest {
  const o = args.opts;
  const [image, ...command] = args.operands;
  const pull = str(o.pull) ?? 'missing';
  if (pull !== 'missing' && pull !== 'always' && pull !== 'never') {
    throw new HutchError('BAD_FLAG', `--pull ${pull}: must be always, missing or never`);
  }
  const network = str(o.network) ?? str(o.net) ?? '';
  return {
    image: image!,
    command,
    name: str(o.name),
    entrypoint: str(o.entrypoint),
    pull,
    platform: str(o.platform),
    pullProgress,
    tty: o.tty === true,
    interactive: o.interactive === true,
    rm: o.rm === true,
    envFlags: list(o.env),
    envFiles: list(o.envFile),
    labels: list(o.label),
    labelFiles: list(o.labelFile),
    volumes: list(o.volume),
    mounts: list(o.mount),
    tmpfs: list(o.tmpfs),
    volumesFrom: list(o.volumesFrom),
    restart: str(o.restart),
    logDriver: str(o.logDriver),
    logOpts: list(o.logOpt),
    health: {
      cmd: str(o.healthCmd),
      interval: str(o.healthInterval),
      timeout: str(o.healthTimeout),
      retries: int('health-retries', o.healthRetries),
      startPeriod: str(o.healthStartPeriod),
      none: o.noHealthcheck === true,
    },
    stopSignal: str(o.stopSignal),
    stopTimeout: int('stop-timeout', o.stopTimeout),
    cidfile: str(o.cidfile),
    expose: list(o.expose),
    publish: list(o.publish),
    publishAll: o.publishAll === true,
    publishAllow: list(o.publishAllow),
    networkAliases: list(o.networkAlias),
    ip: str(o.ip),
    options: {
      env: [],
      user: str(o.user),
      workdir: str(o.workdir),
      hostname: str(o.hostname),
      readOnly: o.readOnly === true,
      privileged: o.privileged === true,
      capAdd: list(o.capAdd),
      capDrop: list(o.capDrop),
      securityOpt: list(o.securityOpt),
      ulimits: list(o.ulimit),
      devices: list(o.device),
      sysctls: list(o.sysctl),
      groupAdd: list(o.groupAdd),
      addHosts: list(o.addHost),
      dns: list(o.dns),
      dnsSearch: list(o.dnsSearch),
      dnsOptions: list(o.dnsOption),
      network,
      ipc: str(o.ipc) ?? 'private',
      pid: str(o.pid) ?? 'private',
      uts: str(o.uts) ?? 'private',
      userns: str(o.userns) ?? '',
      shmSize: parseShmSize(str(o.shmSize)),
      init: o.init === true,
      resources: {
        ...limitFlags(o),
        deviceReadBps: list(o.deviceReadBps),
        deviceWriteBps: list(o.deviceWriteBps),
        deviceReadIops: list(o.deviceReadIops),
        deviceWriteIops: list(o.deviceWriteIops),
      },
    },
  };
}
