/**
 * Cold pulls into empty stores, from the loopback registry the harness
 * starts (bench/oci-registry.ts):
 *
 * - pull-debian: one 89 MB gzip layer (debootstrap minbase). Floor: curl of
 *   the blob piped to `tar -xz` into an empty directory, which is all any
 *   engine must do. Targets: hutch at most 0.6x podman and 1.25x the floor.
 * - pull-5layer: five layers with whiteouts and an opaque directory.
 *
 * Every command starts on an empty store (images removed untimed before it)
 * and after `sync` and an idle gap, because this machine's disk slows down
 * after back-to-back extract-and-delete cycles and would bill the next engine.
 */
import { readFileSync } from 'node:fs';
import { benchRegistry as registry } from '../oci-registry.ts';
import type { EngineName, Scenario, ScenarioContext } from '../types.ts';

function blobOf(name: string, tag: string): string {
  const file = '/var/cache/hutch-test/test-images.json';
  const images = (
    JSON.parse(readFileSync(file, 'utf8')) as {
      images: { name: string; tag: string; layers: { digest: string }[] }[];
    }
  ).images;
  const found = images.find((i) => i.name === name && i.tag === tag);
  if (!found) throw new Error(`${file} lists no ${name}:${tag}`);
  return found.layers[0]!.digest;
}

function emptyStores(image: string) {
  return (ctx: ScenarioContext, engine: EngineName): void => {
    if (engine === 'hutch') ctx.run(['hutch', 'rmi', '-f', image]);
    if (engine === 'peer') ctx.run(['podman', 'rmi', '-a', '-f']);
    if (engine === 'floor') ctx.run(['rm', '-rf', `${ctx.dir}/floor`]);
  };
}

function pullScenario(name: string, image: string, tag: string, withFloor: boolean): Scenario {
  const ref = (): string => `${registry()}/${image}:${tag}`;
  return {
    name,
    description: `cold pull of ${image}:${tag} from a loopback registry`,
    rounds: 5,
    warmup: 1,
    registry: true,
    settle: { syncAndIdleMs: 4000 },
    setup: (ctx) => {
      // Something to remove on the first before_each.
      ctx.run(['hutch', 'pull', '-q', ref()]);
    },
    before_each: (ctx, engine) => {
      try {
        emptyStores(ref())(ctx, engine);
      } catch {
        // Nothing to remove yet.
      }
    },
    hutch: () => ['hutch', 'pull', '-q', ref()],
    peer: () => ['podman', 'pull', '-q', '--tls-verify=false', `docker://${ref()}`],
    ...(withFloor
      ? {
          floor: (ctx: ScenarioContext) => [
            'sh',
            '-c',
            // As an unprivileged user tar cannot make the image's device nodes and says so
            // (exit 2) but unpacks the rest: success is the tree being there.
            `mkdir -p ${ctx.dir}/floor && curl -sf http://${registry()}/v2/${image}/blobs/${blobOf(image, tag)} | tar -xz -C ${ctx.dir}/floor 2>/dev/null; test -x ${ctx.dir}/floor/bin/sh || test -L ${ctx.dir}/floor/bin`,
          ],
        }
      : {}),
    target: withFloor
      ? { metric: 'time', ratioMax: 0.6, vsFloorMax: 1.25 }
      : { metric: 'time', ratioMax: 0.6 },
  };
}

export const pull: Scenario[] = [
  pullScenario('pull-debian', 'debian', 'bookworm-minbase', true),
  pullScenario('pull-5layer', 'multilayer', '5', false),
];
