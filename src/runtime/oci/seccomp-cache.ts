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
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/fs-atomic.ts';
import type { OciSpec } from '../spec.ts';
import type { OciRuntime } from './runtime.ts';

export const BPF_ANNOTATION = 'run.oci.seccomp_bpf_data';

export function seccompCacheKey(spec: OciSpec, runtime: OciRuntime): string | undefined {
  if (!spec.linux.seccomp || runtime.name !== 'crun') return undefined;
  let bin;
  try {
    bin = statSync(runtime.path);
  } catch {
    return undefined;
  }
  return createHash('sha256')
    .update(JSON.stringify(spec.linux.seccomp))
    .update(`\0${runtime.path}\0${bin.size}\0${bin.mtimeMs}\0${release()}`)
    .digest('hex');
}

/** Puts a cached filter into the spec; false when there is none yet. */
export function useCachedFilter(spec: OciSpec, cacheDir: string, key: string | undefined): boolean {
  if (!key) return false;
  try {
    spec.annotations[BPF_ANNOTATION] = readFileSync(join(cacheDir, key)).toString('base64');
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
  key: string | undefined,
): void {
  if (!key) return;
  try {
    const bpf = readFileSync(join(runtime.root, id, 'seccomp.bpf'));
    if (bpf.length === 0 || bpf.length % 8 !== 0) return; // not a sock_filter array
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(cacheDir, key), bpf, 0o600);
  } catch {
    // No filter file (another runtime build): simply no cache.
  }
}
