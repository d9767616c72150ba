/**
 * The shape of hutch.toml. Unknown keys are errors, not silently ignored:
 * a misspelt option that does nothing is worse than a refusal.
 */
import { z } from 'zod';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export const configSchema = z.strictObject({
  engine: z
    .strictObject({
      runtime: z.string().min(1).optional(),
      conmon: z.string().min(1).optional(),
      log_level: z.enum(LOG_LEVELS).optional(),
    })
    .optional(),
  registries: z
    .strictObject({
      /** Registries tried, in order, for names without one (default docker.io). */
      search: z.array(z.string().min(1)).optional(),
      /** Registries reached over plain HTTP or with unverified TLS. */
      insecure: z.array(z.string().min(1)).optional(),
      /** Registry → mirror endpoints tried first. */
      mirrors: z.record(z.string(), z.array(z.string().min(1))).optional(),
    })
    .optional(),
  network: z
    .strictObject({
      /** What --network means when not given: pasta, slirp4netns, bridge (the default network), host or none. */
      default: z.enum(['pasta', 'slirp4netns', 'bridge', 'host', 'none']).optional(),
      /** Containers may reach services on the host's loopback (host.containers.internal). */
      host_loopback: z.boolean().optional(),
      /** Published TCP ports served from host sockets handed to the container's server (default true). */
      port_handoff: z.boolean().optional(),
      /** What joins the user networks' namespace to the outside, rootless (default pasta where installed). */
      user_networks_uplink: z.enum(['pasta', 'slirp4netns']).optional(),
    })
    .optional(),
  storage: z
    .strictObject({
      driver: z.string().min(1).optional(),
      root: z.string().startsWith('/', 'must be an absolute path').optional(),
      /** The zfs driver's parent dataset, e.g. "pool/hutch" (rootful). */
      zfs_dataset: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]*[A-Za-z0-9_.:-]$/, 'must be a dataset name such as "pool/hutch"')
        .optional(),
    })
    .optional(),
});

export type HutchConfig = z.infer<typeof configSchema>;
