/**
 * Every command, loaded on demand: start-up parses only the command being
 * run, so adding commands does not slow any of them down. The summaries live
 * here so that `hutch --help` lists commands without loading them.
 */
import type { CommandSpec } from '../args/spec.ts';
import { commandLoader } from '../command-loader.ts';

export interface CommandEntry {
  summary: string;
  aliases?: string[];
  load: () => Promise<{ command: CommandSpec }>;
}

export const COMMANDS: Record<string, CommandEntry> = {
  run: { summary: 'Create and run a new container from an image', load: () => import('./run.ts') },
  create: { summary: 'Create a new container', load: () => import('./create.ts') },
  container: { summary: 'Manage containers', load: () => import('./container.ts') },
  start: { summary: 'Start one or more stopped containers', load: () => import('./start.ts') },
  stop: { summary: 'Stop one or more running containers', load: () => import('./stop.ts') },
  restart: { summary: 'Restart one or more containers', load: () => import('./restart.ts') },
  kill: { summary: 'Kill one or more running containers', load: () => import('./kill.ts') },
  rm: { summary: 'Remove one or more containers', load: () => import('./rm.ts') },
  ps: { summary: 'List containers', load: () => import('./ps.ts') },
  logs: { summary: 'Fetch the logs of a container', load: () => import('./logs.ts') },
  wait: {
    summary: 'Block until one or more containers stop, then print their exit codes',
    load: () => import('./wait.ts'),
  },
  exec: { summary: 'Execute a command in a running container', load: () => import('./exec.ts') },
  healthcheck: { summary: 'Manage healthchecks of containers', load: () => import('./healthcheck.ts') },
  rename: { summary: 'Rename a container', load: () => import('./rename.ts') },
  commit: { summary: "Create a new image from a container's changes", load: () => import('./commit.ts') },
  cp: {
    summary: 'Copy files/folders between a container and the local filesystem',
    load: () => import('./cp.ts'),
  },
  diff: {
    summary: "Inspect changes to files or directories on a container's filesystem",
    load: () => import('./diff.ts'),
  },
  export: { summary: "Export a container's filesystem as a tar archive", load: () => import('./export.ts') },
  top: { summary: 'Display the running processes of a container', load: () => import('./top.ts') },
  stats: {
    summary: 'Display a live stream of container(s) resource usage statistics',
    load: () => import('./stats.ts'),
  },
  pause: { summary: 'Pause all processes within one or more containers', load: () => import('./pause.ts') },
  unpause: {
    summary: 'Unpause all processes within one or more containers',
    load: () => import('./unpause.ts'),
  },
  port: {
    summary: 'List port mappings or a specific mapping for the container',
    load: () => import('./port.ts'),
  },
  attach: {
    summary: 'Attach local standard input, output, and error streams to a running container',
    load: () => import('./attach.ts'),
  },
  update: { summary: 'Update configuration of one or more containers', load: () => import('./update.ts') },
  history: { summary: 'Show the history of an image', load: () => import('./history.ts') },
  image: { summary: 'Manage images', load: () => import('./image.ts') },
  images: { summary: 'List images', load: () => import('./images.ts') },
  inspect: {
    summary: 'Display detailed information on containers and images',
    load: () => import('./inspect.ts'),
  },
  import: {
    summary: 'Import the contents from a tarball to create a filesystem image',
    load: () => import('./import.ts'),
  },
  load: { summary: 'Load an image from a tar archive or STDIN', load: () => import('./load.ts') },
  save: {
    summary: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
    load: () => import('./save.ts'),
  },
  login: { summary: 'Log in to a registry', load: () => import('./login.ts') },
  logout: { summary: 'Log out from a registry', load: () => import('./logout.ts') },
  push: { summary: 'Upload an image to a registry', load: () => import('./push.ts') },
  pull: { summary: 'Download an image from a registry', load: () => import('./pull.ts') },
  rmi: { summary: 'Remove one or more images', load: () => import('./rmi.ts') },
  tag: { summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', load: () => import('./tag.ts') },
  doctor: {
    summary: 'Check every prerequisite of rootless and rootful use, with fixes',
    load: () => import('./doctor.ts'),
  },
  info: { summary: 'Show what hutch uses on this host and why', load: () => import('./info.ts') },
  setup: { summary: 'Prepare this host for a rootless user (run as root)', load: () => import('./setup.ts') },
  system: { summary: 'Manage hutch itself', load: () => import('./system.ts') },
  unshare: {
    summary: "Run a command as root inside the user's namespace",
    load: () => import('./unshare.ts'),
  },
  version: { summary: 'Show the hutch version information', load: () => import('./version.ts') },
  network: { summary: 'Manage networks', load: () => import('./network.ts') },
  volume: { summary: 'Manage volumes', load: () => import('./volume.ts') },
};

// From the bundle, each command is its own script with a code cache (command-loader.ts).
for (const [name, entry] of Object.entries(COMMANDS)) entry.load = commandLoader(name, entry.load);

export function findCommand(word: string): CommandEntry | undefined {
  return COMMANDS[word] ?? Object.values(COMMANDS).find((c) => c.aliases?.includes(word));
}
