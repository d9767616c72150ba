/** `hutch network create|ls|inspect|rm|prune`: user networks, in docker's shapes. */
import { ContainerStore } from '../runtime/containers/store.ts';
import type { ContainerRecord } from '../runtime/containers/types.ts';
import { NetworkStore } from '../network/store.ts';
import type { NetworkRecord, NetworkRequest } from '../network/store.ts';
import { HutchError } from '../util/errors.ts';
import type { Context } from './context.ts';
import { openStateful } from './context.ts';

export function openNetworks(ctx: Context): NetworkStore {
  openStateful(ctx);
  return new NetworkStore(ctx.paths.root);
}

/** The user networks a container is on (none for pasta, slirp4netns, host, none and container:). */
export function containerNetworks(rec: ContainerRecord): string[] {
  return (rec.hostConfig.networks ?? []).map((n) => n.name);
}

function users(ctx: Context, name: string): ContainerRecord[] {
  return new ContainerStore(ctx.paths.root, ctx.paths.runroot)
    .list()
    .filter((c) => containerNetworks(c).includes(name));
}

/** KEY=VALUE labels; a bare KEY is an empty label, as docker takes it. */
export function parseLabels(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const eq = l.indexOf('=');
    out[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return out;
}

export function createNetwork(ctx: Context, req: NetworkRequest): NetworkRecord {
  return openNetworks(ctx).create(req);
}

/** docker network inspect's shape. */
export function networkView(ctx: Context, n: NetworkRecord): Record<string, unknown> {
  const store = new NetworkStore(ctx.paths.root);
  const leases = store.readLeases(n.name);
  const containers: Record<string, unknown> = {};
  for (const c of users(ctx, n.name)) {
    const lease = leases[c.id];
    containers[c.id] = {
      Name: c.name,
      IPv4Address: lease ? `${lease.ip}/${n.subnet.split('/')[1]}` : '',
      IPv6Address: lease?.ip6 && n.ipv6 ? `${lease.ip6}/${n.ipv6.subnet.split('/')[1]}` : '',
    };
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: n.ipv6 !== undefined,
    IPAM: {
      Driver: 'default',
      Options: {},
      Config: [
        { Subnet: n.subnet, Gateway: n.gateway, ...(n.ipRange ? { IPRange: n.ipRange } : {}) },
        ...(n.ipv6 ? [{ Subnet: n.ipv6.subnet, Gateway: n.ipv6.gateway }] : []),
      ],
    },
    Internal: n.internal,
    Attachable: false,
    Ingress: false,
    Containers: containers,
    Options: { 'com.docker.network.bridge.name': n.bridge },
    Labels: n.labels,
  };
}

/** One row of `network ls`. */
export function networkRow(n: NetworkRecord): Record<string, unknown> {
  return {
    ID: n.id.slice(0, 12),
    Name: n.name,
    Driver: n.driver,
    Scope: 'local',
    IPv6: n.ipv6 !== undefined,
    Internal: n.internal,
    Labels: Object.entries(n.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    CreatedAt: n.created,
  };
}

function matches(n: NetworkRecord, filters: string[], inUse: (name: string) => boolean): boolean {
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    const value = eq < 0 ? '' : f.slice(eq + 1);
    if (key === 'name' && !n.name.includes(value)) return false;
    else if (key === 'id' && !n.id.startsWith(value)) return false;
    else if (key === 'driver' && n.driver !== value) return false;
    else if (key === 'label') {
      const [k = '', v] = value.split('=', 2) as [string, string | undefined];
      if (!(k in n.labels) || (v !== undefined && n.labels[k] !== v)) return false;
    } else if (key === 'dangling') {
      if (value !== 'true' && value !== 'false')
        throw new HutchError('BAD_FLAG', `--filter dangling=${value}: give true or false`);
      if ((value === 'true') === inUse(n.name)) return false;
    } else if (!['name', 'id', 'driver', 'label', 'dangling'].includes(key)) {
      throw new HutchError('BAD_FLAG', `invalid filter "${key}"`, {
        hint: 'Filters: name=, id=, driver=, label=KEY[=VALUE], dangling=true|false.',
      });
    }
  }
  return true;
}

export function listNetworks(ctx: Context, filters: string[]): NetworkRecord[] {
  const inUse = (name: string): boolean => users(ctx, name).length > 0;
  return openNetworks(ctx)
    .list()
    .filter((n) => matches(n, filters, inUse));
}

export function inspectNetworks(
  ctx: Context,
  refs: string[],
): { found: Record<string, unknown>[]; errors: HutchError[] } {
  const store = openNetworks(ctx);
  const found: Record<string, unknown>[] = [];
  const errors: HutchError[] = [];
  for (const ref of refs) {
    try {
      found.push(networkView(ctx, store.get(ref)));
    } catch (e) {
      if (!(e instanceof HutchError)) throw e;
      errors.push(new HutchError(e.code, e.message, { exitCode: 1 }));
    }
  }
  return { found, errors };
}

/** rm: refuses a network containers are on (with -f, removes those containers first is docker's; here it says which). */
export function removeNetworks(ctx: Context, refs: string[]): { removed: string[]; errors: HutchError[] } {
  const store = openNetworks(ctx);
  const removed: string[] = [];
  const errors: HutchError[] = [];
  for (const ref of refs) {
    try {
      const n = store.get(ref);
      const on = users(ctx, n.name);
      if (on.length > 0) {
        throw new HutchError(
          'NETWORK_IN_USE',
          `network ${n.name} is in use by container(s): ${on.map((c) => c.name).join(', ')}`,
          {
            hint: 'Remove those containers first (hutch rm), or disconnect them (hutch network disconnect).',
            exitCode: 1,
          },
        );
      }
      store.remove(n.name);
      removed.push(ref);
    } catch (e) {
      if (!(e instanceof HutchError)) throw e;
      errors.push(new HutchError(e.code, e.message, { hint: e.hint, exitCode: 1 }));
    }
  }
  return { removed, errors };
}

export function pruneNetworks(ctx: Context, filters: string[]): string[] {
  const store = openNetworks(ctx);
  const removed: string[] = [];
  for (const n of listNetworks(ctx, filters)) {
    if (users(ctx, n.name).length > 0) continue;
    store.remove(n.name);
    removed.push(n.name);
  }
  return removed;
}
