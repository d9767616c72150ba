/**
 * Which registries allowed plain HTTP answered only over it, remembered in
 * the runtime root (emptied at boot) as one empty file per registry. The
 * registry client sends its first request to a remembered registry over
 * plain HTTP at once; only an answer as a TLS server gives a plain request
 * (400, or the connection dropped) makes it ask /v2/, so a registry that
 * has turned to TLS is still found at once.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SchemeMemory } from '../image/registry/client.ts';

export function schemeMemory(runroot: string): SchemeMemory {
  const dir = join(runroot, 'registries');
  const mark = (host: string): string => join(dir, `${encodeURIComponent(host)}.http`);
  return {
    plainHttp: (host) => existsSync(mark(host)),
    remember(host, plainHttp) {
      try {
        if (!plainHttp) {
          rmSync(mark(host), { force: true });
          return;
        }
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileSync(mark(host), '');
      } catch {
        // Not remembered: the next command asks over HTTPS first again.
      }
    },
  };
}
