/**
 * Compiled seccomp filters, kept between starts. crun compiles the JSON
 * profile with libseccomp at every create (about 25 ms for the default
 * profile here, half of a container start); the result depends only on the
 * profile, the runtime build and the kernel. After a first start hutch keeps
 * the filter crun wrote (its state directory's seccomp.bpf) and hands it back
 * through crun's `run.oci.seccomp_bpf_data` annotation, which skips the
 * compilation. The cache lives under the runroot, so a reboot (perhaps into
 * another kernel) starts it afresh; the key includes the runtime binary's
 * size and mtime, so an upgrade does too.
 *
 * The file name is a quick (non-cryptographic) hash of the key; the file
 * holds the whole key beside the filter, and a filter is used only when its
 * key matches exactly, so a hash collision can never hand a container the
 * wrong filter. (node:crypto would cost a start about 13 ms to load.)
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/fs-atomic.ts';
import type { OciSpec } from '../spec.ts';
import type { OciRuntime } from './runtime.ts';

export const BPF_ANNOTATION = 'run.oci.seccomp_bpf_data';

export interface FilterKey {
  /** Everything the compiled filter depends on. */
  text: string;
  /** Its file name. */
  name: string;
}

/** FNV-1a, 64 bits in two halves: spreads keys over file names, nothing more. */
function quickHash(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x01000193 + 2 * i) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}

export function seccompCacheKey(spec: OciSpec, runtime: OciRuntime): FilterKey | undefined {
  if (!spec.linux.seccomp || runtime.name !== 'crun') return undefined;
  let bin;
  try {
    bin = statSync(runtime.path);
  } catch {
    return undefined;
  }
  const text = `${runtime.path}\0${bin.size}\0${bin.mtimeMs}\0${release()}\0${JSON.stringify(spec.linux.seccomp)}`;
  return { text, name: quickHash(text) };
}

/** Puts a cached filter into the spec; false when there is none (or it was made for another key). */
export function useCachedFilter(spec: OciSpec, cacheDir: string, key: FilterKey | undefined): boolean {
  if (!key) return false;
  try {
    const stored = readFileSync(join(cacheDir, key.name));
    const eol = stored.indexOf(0x0a);
    if (eol < 0 || stored.subarray(0, eol).toString('utf8') !== JSON.stringify(key.text)) return false;
    spec.annotations[BPF_ANNOTATION] = stored.subarray(eol + 1).toString('base64');
    return true;
  } catch {
    return false;
  }
}

/** After a create that compiled the filter: keep what crun wrote. */
export function rememberFilter(
  runtime: OciRuntime,
  id: string,
  cacheDir: string,
  key: FilterKey | undefined,
): void {
  if (!key) return;
  try {
    const bpf = readFileSync(join(runtime.root, id, 'seccomp.bpf'));
    if (bpf.length === 0 || bpf.length % 8 !== 0) return; // not a sock_filter array
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    // The key as one JSON line (no newline inside), then the filter's bytes.
    writeFileAtomic(
      join(cacheDir, key.name),
      Buffer.concat([Buffer.from(`${JSON.stringify(key.text)}\n`), bpf]),
      0o600,
    );
  } catch {
    // No filter file (another runtime build): simply no cache.
  }
}
