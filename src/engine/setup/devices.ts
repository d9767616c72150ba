/**
 * /dev/net/tun (pasta, slirp4netns) and /dev/fuse (fuse-overlayfs) must be
 * usable by every user, as distributions ship them; some hosts have 0600.
 */
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sys } from '../../sys/native.ts';
import { readIfExists, writeFileAtomic } from '../../util/fs-atomic.ts';
import type { SetupStep, SetupTarget } from './types.ts';
import { previousContent } from './undo.ts';

const DEVICES = [
  { path: '/dev/net/tun', major: 10, minor: 200, kernel: 'tun' },
  { path: '/dev/fuse', major: 10, minor: 229, kernel: 'fuse' },
];

const UDEV_RULES = DEVICES.map((d) => `KERNEL=="${d.kernel}", MODE="0666"`).join('\n') + '\n';

export function deviceSteps(t: SetupTarget): SetupStep[] {
  const steps: SetupStep[] = [];
  if (t.live) {
    for (const d of DEVICES) {
      let mode: number | undefined;
      try {
        mode = statSync(d.path).mode & 0o777;
      } catch {
        mode = undefined;
      }
      if (mode !== undefined && (mode & 0o666) === 0o666) {
        steps.push({ id: `device:${d.kernel}`, title: d.path, status: 'ok', detail: 'usable by all users' });
        continue;
      }
      steps.push({
        id: `device:${d.kernel}`,
        title: d.path,
        status: 'change',
        detail:
          mode === undefined
            ? `create ${d.path} (mode 0666)`
            : `chmod 0666 ${d.path} (now ${mode.toString(8)})`,
        undo: mode === undefined ? [] : [{ kind: 'mode', path: d.path, previous: mode }],
        apply: () => {
          if (mode === undefined) {
            mkdirSync(join(d.path, '..'), { recursive: true });
            sys().mknod(d.path, 0o20666, d.major, d.minor);
          }
          chmodSync(d.path, 0o666);
        },
      });
    }
  }
  // Keep the modes across reboots where udev manages /dev.
  const rulesDir = join(t.hostRoot, 'etc/udev/rules.d');
  const rulesFile = join(rulesDir, '70-hutch-devices.rules');
  if (existsSync(rulesDir)) {
    const ok = readIfExists(rulesFile) === UDEV_RULES;
    steps.push({
      id: 'device:udev',
      title: 'udev rule for device modes',
      status: ok ? 'ok' : 'change',
      detail: ok ? rulesFile : `write ${rulesFile}`,
      ...(ok
        ? {}
        : {
            diff: UDEV_RULES.trimEnd()
              .split('\n')
              .map((l) => `${rulesFile}: +${l}`),
            undo: [{ kind: 'file', path: rulesFile, previous: previousContent(rulesFile) }],
            apply: () => writeFileAtomic(rulesFile, UDEV_RULES),
          }),
    });
  }
  return steps;
}
