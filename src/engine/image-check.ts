/**
 * `system check` for images: every image's manifest, config and layers are
 * present and every blob matches its digest; leftovers of killed commands
 * (ingest files, staged layers, layers and blobs no image uses) are garbage.
 * --repair drops broken images and removes garbage.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DriverLayout } from '../storage/drivers/layout.ts';
import { shiftedSource } from '../storage/shifted.ts';
import { TEMP_MARK } from '../util/fs-atomic.ts';
import type { Finding } from './check.ts';
import type { Context } from './context.ts';
import { deleteImage } from './images.ts';
import { openImageStore } from './images-store.ts';

export function checkImages(ctx: Context, repair: boolean): Finding[] {
  const s = openImageStore(ctx);
  const findings: Finding[] = [];
  const db = s.db.read();
  const onDisk = new Set(s.driver.listLayers());
  const blobOk = new Map<string, boolean>();
  const verify = (d: string): boolean => {
    let ok = blobOk.get(d);
    if (ok === undefined) {
      ok = s.blobs.has(d) && s.blobs.verify(d);
      blobOk.set(d, ok);
    }
    return ok;
  };
  const broken: string[] = [];
  for (const im of db.images) {
    const name = im.names[0] ?? im.id.slice(0, 12);
    const problems: string[] = [];
    for (const d of [im.manifestDigest, im.configDigest])
      if (!verify(d)) problems.push(`blob ${d} is missing or corrupt`);
    for (const l of im.layers) {
      if (!db.layers.some((r) => r.id === l)) problems.push(`layer ${l.slice(0, 12)} has no record`);
      if (!onDisk.has(l)) problems.push(`layer ${l.slice(0, 12)} is missing from the ${s.driver.name} store`);
    }
    if (problems.length > 0) {
      broken.push(im.id);
      findings.push({
        severity: 'problem',
        what: `image ${name}`,
        detail: problems.join('; '),
        repaired: repair,
      });
    }
  }
  for (const l of db.layers) {
    if (l.compressedDigest && s.blobs.has(l.compressedDigest) && !verify(l.compressedDigest)) {
      findings.push({
        severity: 'problem',
        what: `blob ${l.compressedDigest}`,
        detail: 'does not match its digest',
        repaired: repair,
      });
      if (repair) s.blobs.remove(l.compressedDigest);
    }
  }
  if (repair) for (const id of broken) deleteImage(s, id);

  // Garbage: what no record points at.
  const used = new Set(s.db.read().layers.map((l) => l.id));
  for (const l of onDisk) {
    if (used.has(l)) continue;
    findings.push({ severity: 'garbage', what: 'unreferenced layer', detail: l, repaired: repair });
    if (repair) s.driver.removeLayer(l);
  }
  // Shifted copies (storage/shifted.ts) live as long as the image layer they copy.
  for (const l of s.driver.listLayers('shifted')) {
    if (s.driver.hasLayer(shiftedSource(l))) continue;
    findings.push({
      severity: 'garbage',
      what: 'shifted image copy',
      detail: `${l}: the image it copies is gone`,
      repaired: repair,
    });
    if (repair) s.driver.removeLayer(l);
  }
  // Image views (storage driver's views/PID-*) whose process is gone: a killed command's, maybe still mounted.
  const viewsDir = join(ctx.paths.root, 'storage', s.driver.name, 'views');
  for (const n of existsSync(viewsDir) ? readdirSync(viewsDir) : []) {
    const pid = Number(n.split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`)) continue;
    findings.push({ severity: 'garbage', what: 'image view', detail: join(viewsDir, n), repaired: repair });
    if (repair) DriverLayout.dropView(join(viewsDir, n));
  }
  for (const n of readdirSync(s.blobs.ingestDir)) {
    if (n.endsWith('.lock')) continue;
    findings.push({
      severity: 'garbage',
      what: 'partial download',
      detail: join(s.blobs.ingestDir, n),
      repaired: repair,
    });
    if (repair) rmSync(join(s.blobs.ingestDir, n), { force: true });
  }
  const layersDir = join(ctx.paths.root, 'storage', s.driver.name, 'layers');
  for (const n of readdirSync(layersDir)) {
    if (!n.startsWith(TEMP_MARK)) continue;
    findings.push({
      severity: 'garbage',
      what: 'half-made layer',
      detail: join(layersDir, n),
      repaired: repair,
    });
    // Through the driver: a btrfs one is a subvolume.
    if (repair) s.driver.removeLayer(n);
  }
  return findings;
}
