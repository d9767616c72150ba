/**
 * What every driver shares: where layers live, and how one becomes visible
 * only when complete (built under a temporary name, then renamed).
 */
import { existsSync, mkdirSync, readdirSync, rmSync, renameSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { unmountEvery } from '../../sys/native.ts';
import { TEMP_MARK } from '../../util/fs-atomic.ts';

/** A shifted copy of an image: its top layer's id, a dash, and a hash of the mapping. */
export const SHIFTED_NAME = /^[a-f0-9]{64}-[a-f0-9]{16}$/;

export class DriverLayout {
  readonly home: string;
  readonly layers: string;
  readonly containers: string;
  /** Read-only views of images (LayerDriver.viewImage), one directory each while in use. */
  readonly views: string;

  constructor(storeRoot: string, driver: string) {
    this.home = join(storeRoot, 'storage', driver);
    this.layers = join(this.home, 'layers');
    this.containers = join(this.home, 'containers');
    this.views = join(this.home, 'views');
    mkdirSync(this.layers, { recursive: true, mode: 0o700 });
    mkdirSync(this.containers, { recursive: true, mode: 0o700 });
  }

  layer(id: string): string {
    return join(this.layers, id);
  }

  container(id: string): string {
    return join(this.containers, id);
  }

  /** A fresh temporary name beside the layers, carrying this process's pid (see `abandonedStaging`). */
  stagingPath(id: string): string {
    return join(this.layers, `${TEMP_MARK}${id}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  }

  /** A fresh temporary directory beside the layers; `publish` renames it into place. */
  staging(id: string): { dir: string; publish: () => void; discard: () => void } {
    const dir = this.stagingPath(id);
    mkdirSync(dir, { mode: 0o755 });
    return {
      dir,
      publish: () => renameSync(dir, this.layer(id)),
      discard: () => rmSync(dir, { recursive: true, force: true }),
    };
  }

  /** Names of staged layers whose process is gone: what a killed pull left. */
  abandonedStaging(): string[] {
    return readdirSync(this.layers).filter((n) => {
      if (!n.startsWith(TEMP_MARK)) return false;
      const pid = Number(n.split('-').at(-2));
      return !(Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`));
    });
  }

  listLayers(kind: 'image' | 'shifted' = 'image'): string[] {
    const name = kind === 'image' ? /^[a-f0-9]{64}$/ : SHIFTED_NAME;
    return readdirSync(this.layers).filter((n) => name.test(n));
  }

  /** Unmounts a view (every layer of it) and removes its directory. */
  static dropView(dir: string): void {
    unmountEvery(dir);
    rmSync(dir, { recursive: true, force: true });
  }

  /** Bytes in a tree, counting each inode once. */
  static usage(dir: string): number {
    const seen = new Set<string>();
    let total = 0;
    const walk = (d: string): void => {
      let names: string[];
      try {
        names = readdirSync(d);
      } catch {
        return;
      }
      for (const n of names) {
        const p = join(d, n);
        const st = lstatSync(p, { bigint: true });
        const key = `${st.dev}:${st.ino}`;
        if (!seen.has(key)) {
          seen.add(key);
          total += Number(st.blocks) * 512;
        }
        if (st.isDirectory()) walk(p);
      }
    };
    walk(dir);
    return total;
  }
}
