/** The system tools user networks drive (ip, nft, nsenter), found in sbin too, and run with their errors kept. */
import { HutchError } from '../util/errors.ts';
import { lookPath } from '../util/which.ts';

export function sbinTool(name: string, pkg: string): string {
  const found = lookPath(name, `${process.env.PATH ?? ''}:/usr/sbin:/sbin`);
  if (!('path' in found)) {
    throw new HutchError('NETWORK_TOOL_MISSING', `user networks need ${name}, which is not installed`, {
      hint: `Install it (Debian: apt install ${pkg}).`,
    });
  }
  return found.path;
}

/** Runs argv (its first word a path); its stdout, or a NETWORK_SETUP error with what it said. */
export function runTool(argv: string[], input?: string): string {
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync(argv[0]!, argv.slice(1), { input, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new HutchError(
      'NETWORK_SETUP',
      `${argv.join(' ')}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`,
    );
  }
  return r.stdout;
}
