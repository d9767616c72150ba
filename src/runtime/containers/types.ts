/**
 * What hutch keeps about a container: the choices made when it was created
 * (fixed for its life) and its state (changed by start, stop, exits). Both
 * live in one JSON file per container, replaced whole under the container's
 * lock, so a reader always sees one consistent version.
 */
import type { RunOptions } from './options.ts';
import type { IdMappings } from '../../util/idmap.ts';
import type { NetworkState } from '../../network/attach.ts';
import type { PortBinding } from '../../network/ports.ts';

export interface NetworkAttachment {
  name: string;
  aliases: string[];
  ip: string | undefined;
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'exited' | 'removing' | 'dead';

export type RestartPolicyName = 'no' | 'on-failure' | 'always' | 'unless-stopped';

export interface RestartPolicy {
  name: RestartPolicyName;
  maximumRetryCount: number;
}

export interface HealthConfig {
  /** docker's form: ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"]. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  retries: number;
}

export interface HealthState {
  status: 'starting' | 'healthy' | 'unhealthy';
  failingStreak: number;
  log: { start: string; end: string; exitCode: number; output: string }[];
}

/** A mount as the user asked for it, for inspect and for --volumes-from. */
export interface MountRecord {
  type: 'bind' | 'volume' | 'tmpfs';
  source: string;
  destination: string;
  /** Volume name for type volume. */
  name?: string;
  readOnly: boolean;
  /** Raw options: ro, rw, U, z, Z, nocopy, tmpfs size/mode, bind propagation. */
  options: string[];
}

export interface ContainerConfig {
  image: string;
  imageId: string;
  /** The full command: entrypoint then cmd, as resolved at create time. */
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workingDir: string;
  user: string;
  hostname: string;
  tty: boolean;
  openStdin: boolean;
  labels: Record<string, string>;
  stopSignal: string;
  stopTimeout: number;
  exposedPorts: string[];
  healthcheck: HealthConfig | undefined;
}

export interface HostConfig {
  autoRemove: boolean;
  restartPolicy: RestartPolicy;
  logDriver: 'k8s-file' | 'json-file' | 'none' | 'passthrough';
  logOpts: Record<string, string>;
  networkMode: string;
  /** -p as parsed at create (host port 0: chosen at each start); absent in records made before publishing. */
  portBindings?: PortBinding[];
  /** -P: every exposed port on a free host port at each start. */
  publishAll?: boolean;
  /** --publish-allow: the only networks whose clients reach the published ports (empty: all). */
  publishAllow?: string[];
  /** The user networks the container is on, with its aliases and a fixed address (--ip) on each. */
  networks?: NetworkAttachment[];
  readOnly: boolean;
  privileged: boolean;
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
  init: boolean;
  mounts: MountRecord[];
  tmpfs: Record<string, string>;
  /** Limits as given, for inspect (the spec holds the enforced form). */
  memory: number;
  memorySwap: number;
  nanoCpus: number;
  cpuShares: number;
  pidsLimit: number;
  shmSize: number;
  extraHosts: string[];
  userns: string;
  groupAdd: string[];
  volumesFrom: string[];
  cidFile: string | undefined;
}

export interface ContainerState {
  status: ContainerStatus;
  pid: number;
  /** conmon's pid and its start time (from /proc/PID/stat), to tell a reused pid apart. */
  conmonPid: number;
  conmonStart: number;
  exitCode: number;
  error: string;
  oomKilled: boolean;
  startedAt: string;
  finishedAt: string;
  restartCount: number;
  /** Set by `stop`/`kill` by the user: restart policies leave such a container alone. */
  stoppedByUser: boolean;
  health: HealthState | undefined;
  /** The root filesystem path while mounted. */
  rootfs: string | undefined;
  /** While running on pasta or slirp4netns: its namespace, helper and published ports. */
  network?: NetworkState | undefined;
}

export interface ContainerRecord {
  id: string;
  name: string;
  created: string;
  driver: string;
  /** The image's top layer (chain-ID hex). */
  topLayer: string;
  /**
   * With its own ID mapping: the mapping (container id -> id in hutch's
   * namespace) and the shifted copy of the image its root sits on instead
   * of topLayer (storage/shifted.ts).
   */
  idMappings?: IdMappings;
  shiftedLayer?: string;
  runtime: string;
  config: ContainerConfig;
  hostConfig: HostConfig;
  options: RunOptions;
  state: ContainerState;
}

export const EMPTY_STATE: ContainerState = {
  status: 'created',
  pid: 0,
  conmonPid: 0,
  conmonStart: 0,
  exitCode: 0,
  error: '',
  oomKilled: false,
  startedAt: '0001-01-01T00:00:00Z',
  finishedAt: '0001-01-01T00:00:00Z',
  restartCount: 0,
  stoppedByUser: false,
  health: undefined,
  rootfs: undefined,
};

/** The layer a container's root is mounted on: its image, or the image's shifted copy. */
export function rootLayerOf(rec: ContainerRecord): string {
  return rec.shiftedLayer ?? rec.topLayer;
}
