/**
 * Compiled seccomp filters, kept between starts. crun compiles the JSON
 * profile with libseccomp at every create (about 25 ms for the default
 * profile here, half of a container start); the result depends only on the
 * profile's source, the capabilities it is cut to, the runtime build and the
 * kernel. After a first start hutch keeps the filter crun wrote (its state
 * directory's seccomp.bpf) and hands it back through crun's
 * `run.oci.seccomp_bpf_data` annotation, which skips the compilation; a hit
 * also spares hutch building the profile. The cache lives under the runroot,
 * so a reboot (perhaps into another kernel) starts it afresh.
 *
 * The file name is a quick (non-cryptographic) hash of the key; the file
 * holds the whole key beside the filter, and a filter is used only when its
 * key matches exactly, so a hash collision can never hand a container the
 * wrong filter. (node:crypto would cost a start about 13 ms to load.)
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { kernelRelease } from '../../host/kernel.ts';
import { writeFileAtomic } from '../../util/fs-atomic.ts';
import type { SeccompMode } from '../security.ts';

export const BPF_ANNOTATION = 'run.oci.seccomp_bpf_data';

export interface FilterKey {
  /** Everything the compiled filter depends on. */
  text: string;
  /** Its file name. */
  name: string;
}

/** FNV-1a style, 64 bits in two halves: spreads keys over file names, nothing more. */
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

/**
 * The key of the filter a container would get: undefined where there is no
 * filter to cache (another runtime, unconfined, or a profile file missing:
 * the built-in fallback profile is cheap to build and not worth keying).
 */
export function filterKey(
  runtime: { name: string; path: string },
  mode: SeccompMode,
  capabilities: readonly string[],
  profileFile: string,
): FilterKey | undefined {
  if (runtime.name !== 'crun' || mode === 'unconfined') return undefined;
  let bin;
  let source;
  let profile: string;
  try {
    bin = statSync(runtime.path);
    source = statSync(profileFile);
    profile = readFileSync(profileFile, 'utf8');
  } catch {
    return undefined;
  }
  const head = [
    runtime.path,
    bin.size,
    bin.mtimeMs,
    kernelRelease(),
    process.arch,
    capabilities.join(','),
    profileFile,
  ];
  // The name hashes only the short part (hashing 20 KB in cold JavaScript costs milliseconds);
  // the exact match in cachedFilter still compares the profile's full text.
  const name = quickHash([...head, source.size, source.mtimeMs].join('\0'));
  return { text: [...head, profile].join('\0'), name };
}

/** The cached filter for this key, base64 for the annotation; undefined when there is none. */
export function cachedFilter(cacheDir: string, key: FilterKey | undefined): string | undefined {
  if (!key) return undefined;
  try {
    const stored = readFileSync(join(cacheDir, key.name));
    const eol = stored.indexOf(0x0a);
    if (eol < 0 || stored.subarray(0, eol).toString('utf8') !== JSON.stringify(key.text)) return undefined;
    return stored.subarray(eol + 1).toString('base64');
  } catch {
    return undefined;
  }
}

/** After a create that compiled the filter: keep what crun wrote. */
export function rememberFilter(
  runtimeRoot: string,
  id: string,
  cacheDir: string,
  key: FilterKey | undefined,
): void {
  if (!key) return;
  try {
    const bpf = readFileSync(join(runtimeRoot, id, 'seccomp.bpf'));
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
