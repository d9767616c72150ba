/**
 * `hutch network connect` and `disconnect`: a container on user networks
 * joins or leaves one more. A running container gets or loses the interface
 * at once (bridge.ts plugRunning, unplugRunning); a stopped one on its next
 * start. Under the container's lock, like every change of its record.
 */
import { checkAttachable, plugRunning, unplugRunning } from '../../network/bridge.ts';
import { parseNetworkMode } from '../../network/mode.ts';
import { NetworkStore } from '../../network/store.ts';
import type { ContainerRecord } from '../../runtime/containers/types.ts';
import { HutchError } from '../../util/errors.ts';
import { lockContainer } from './cleanup.ts';
import type { Containers } from './open.ts';
import { isRunning } from './stop.ts';

function underLock(c: Containers, ref: string, fn: (rec: ContainerRecord) => void): void {
  const id = c.store.get(ref).id;
  const lock = lockContainer(c, id);
  if (!lock) throw new HutchError('NO_SUCH_CONTAINER', `no such container: ${ref}`);
  try {
    const rec = c.store.read(id);
    if (!rec) throw new HutchError('NO_SUCH_CONTAINER', `no such container: ${ref}`);
    fn(rec);
    c.store.write(rec);
  } finally {
    lock.release();
  }
}

export function connectNetwork(
  c: Containers,
  netRef: string,
  ref: string,
  opts: { aliases: string[]; ip: string | undefined },
): void {
  const net = new NetworkStore(c.ctx.paths.root).get(netRef);
  underLock(c, ref, (rec) => {
    const mode = parseNetworkMode(rec.hostConfig.networkMode, 'none');
    const on = rec.hostConfig.networks ?? [];
    if (mode.kind !== 'networks' && !(mode.kind === 'none' && !isRunning(c, rec))) {
      throw new HutchError(
        'NETWORK_MODE',
        `container ${rec.name} uses --network ${rec.hostConfig.networkMode}, which cannot be combined with a user network`,
        {
          hint: 'Create the container with --network NAME (a user network); it can then join more.',
        },
      );
    }
    if (on.some((n) => n.name === net.name)) {
      throw new HutchError(
        'ALREADY_CONNECTED',
        `container ${rec.name} is already connected to network ${net.name}`,
        {
          exitCode: 1,
        },
      );
    }
    checkAttachable(net, opts.ip);
    const attachment = { name: net.name, aliases: opts.aliases, ip: opts.ip };
    const state = rec.state.network;
    if (isRunning(c, rec) && state?.mode === 'bridge') {
      const index = Math.max(-1, ...(state.addresses ?? []).map((a, i) => a.index ?? i)) + 1;
      const address = plugRunning(
        c.ctx.paths.root,
        c.ctx.paths.runroot,
        rec.id,
        [...new Set([rec.name, rec.id.slice(0, 12), rec.config.hostname])],
        { net, aliases: opts.aliases, ip: opts.ip },
        index,
        c.ctx.config.network?.host_loopback === true,
        c.ctx.config.network?.user_networks_uplink,
      );
      state.addresses = [...(state.addresses ?? []), address];
    }
    rec.hostConfig.networks = [...on, attachment];
    rec.hostConfig.networkMode = rec.hostConfig.networks.map((n) => n.name).join(',');
    rec.options.network = rec.hostConfig.networkMode;
  });
}

export function disconnectNetwork(c: Containers, netRef: string, ref: string): void {
  const net = new NetworkStore(c.ctx.paths.root).get(netRef);
  underLock(c, ref, (rec) => {
    const on = rec.hostConfig.networks ?? [];
    if (!on.some((n) => n.name === net.name)) {
      throw new HutchError('NOT_CONNECTED', `container ${rec.name} is not connected to network ${net.name}`, {
        exitCode: 1,
      });
    }
    const state = rec.state.network;
    if (isRunning(c, rec) && state?.mode === 'bridge') {
      const addresses = state.addresses ?? [];
      const i = addresses.findIndex((a) => a.network === net.name);
      if (i >= 0) {
        unplugRunning(c.ctx.paths.root, c.ctx.paths.runroot, rec.id, net.name, addresses[i]!.index ?? i);
        state.addresses = addresses.filter((_, k) => k !== i);
      }
    }
    rec.hostConfig.networks = on.filter((n) => n.name !== net.name);
    rec.hostConfig.networkMode = rec.hostConfig.networks.map((n) => n.name).join(',') || 'none';
    rec.options.network = rec.hostConfig.networkMode;
  });
}
