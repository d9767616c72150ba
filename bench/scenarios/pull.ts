/**
 * Cold pulls into empty stores, from the loopback registry the harness
 * starts (bench/oci-registry.ts):
 *
 * - pull-debian: one 89 MB gzip layer (debootstrap minbase). Floor: curl of
 *   the blob piped to `tar -xz` into an empty directory, which is all any
 *   engine must do. Targets: hutch at most 0.6x podman and 1.25x the floor.
 * - pull-5layer: five layers with whiteouts and an opaque directory.
 *
 * Every command starts on an empty store and after `sync` and an idle gap.
 * The store of the round before is moved aside, not deleted, and all of them
 * are removed at the end of the run: on ext4 without a journal (this machine's
 * disk), a new inode is not taken from those deleted in the last minute
 * (the kernel's recently_deleted()), and every file made soon after deleting
 * thousands scans past them all. That doubled every engine's time here
 * (hutch's Debian pull: 1.75 s into a fresh directory, 3.5 s right after
 * removing the previous copy) and billed whoever ran after a removal.
 */
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
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

/** Where used stores wait, untouched, until the scenario ends. */
const usedDir = (ctx: ScenarioContext): string => join(ctx.dir, 'used');

let moved = 0;
/** Moves a store aside (a rename: nothing is deleted while rounds run); the engine makes a new one. */
function moveAside(ctx: ScenarioContext, path: string): void {
  if (!existsSync(path)) return;
  mkdirSync(usedDir(ctx), { recursive: true });
  renameSync(path, join(usedDir(ctx), `${moved++}`));
}

function emptyStores(ctx: ScenarioContext, engine: EngineName): void {
  if (engine === 'hutch') moveAside(ctx, ctx.hutchRoot);
  if (engine === 'peer') {
    // podman keeps the layers' mount bookkeeping in its run root: a new store gets a new one.
    moveAside(ctx, ctx.podmanRoot);
    moveAside(ctx, ctx.podmanRunroot);
  }
  if (engine === 'floor') moveAside(ctx, `${ctx.dir}/floor`);
}

function pullScenario(name: string, image: string, tag: string, withFloor: boolean): Scenario {
  const ref = (): string => `${registry()}/${image}:${tag}`;
  return {
    name,
    description: `cold pull of ${image}:${tag} from a loopback registry`,
    // Nine: on this machine kind the kernel's copy of written data into the
    // page cache (copy_folio_from_iter_atomic) takes up to five times longer
    // in some rounds than in others for the same bytes, so one engine's
    // time swings by half, and a median of five let one or two such rounds
    // decide the verdict.
    rounds: 9,
    warmup: 1,
    registry: true,
    settle: { syncAndIdleMs: 4000 },
    // The used stores stay until the harness removes the run's directories at its end: removed
    // here, they would bill the scenarios that come next in the same way.
    before_each: (ctx, engine) => emptyStores(ctx, engine),
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
