/**
 * The choices of `run`/`create`, normalized and kept in the container's
 * record: every start rebuilds the OCI spec from them and the image, so a
 * container restarted after an upgrade or a reboot gets a fresh, valid spec.
 */
export interface RunOptions {
  env: string[];
  user: string | undefined;
  workdir: string | undefined;
  hostname: string | undefined;
  readOnly: boolean;
  privileged: boolean;
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
  ulimits: string[];
  devices: string[];
  sysctls: string[];
  groupAdd: string[];
  addHosts: string[];
  dns: string[];
  dnsSearch: string[];
  dnsOptions: string[];
  network: string;
  ipc: string;
  pid: string;
  uts: string;
  userns: string;
  shmSize: number;
  init: boolean;
  resources: {
    memory?: string | undefined;
    memorySwap?: string | undefined;
    memoryReservation?: string | undefined;
    cpus?: string | undefined;
    cpuShares?: string | undefined;
    cpuQuota?: string | undefined;
    cpuPeriod?: string | undefined;
    cpusetCpus?: string | undefined;
    pidsLimit?: string | undefined;
    blkioWeight?: string | undefined;
    deviceReadBps?: string[] | undefined;
    deviceWriteBps?: string[] | undefined;
    deviceReadIops?: string[] | undefined;
    deviceWriteIops?: string[] | undefined;
  };
}
