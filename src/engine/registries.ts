/** Registry settings from hutch.toml, and a client for one image reference. */
import type { HutchConfig } from '../config/config.ts';
import { defaultRegistrySettings } from '../image/registry/config.ts';
import type { RegistrySettings } from '../image/registry/config.ts';
import type { ImageReference } from '../image/types.ts';
import type { Context } from './context.ts';
import { schemeMemory } from './registry-schemes.ts';

export function registrySettings(config: HutchConfig): RegistrySettings {
  const base = defaultRegistrySettings();
  const r = config.registries;
  return {
    ...base,
    mirrors: r?.mirrors ?? base.mirrors,
    insecure: r?.insecure ?? base.insecure,
    searchRegistries: r?.search?.length ? r.search : base.searchRegistries,
  };
}

/** The registry names without one resolve to: the first search registry. */
export function defaultRegistry(ctx: Context): string {
  return registrySettings(ctx.config).searchRegistries[0] ?? 'docker.io';
}

export async function clientFor(ctx: Context, ref: Pick<ImageReference, 'registry' | 'repository'>) {
  const { RegistryClient, lookupCredentials } = await import('../image/registry/index.ts');
  return new RegistryClient({
    registry: ref.registry,
    repository: ref.repository,
    settings: registrySettings(ctx.config),
    credentials: (host: string) => lookupCredentials(host, { repository: ref.repository }),
    schemes: schemeMemory(ctx.paths.runroot),
  });
}
