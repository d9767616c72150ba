/**
 * A runtime directory for users who never log in (service accounts), where
 * no login manager creates /run/user/UID. A tmpfiles.d entry brings it back
 * after reboot where systemd-tmpfiles runs.
 */
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readIfExists, writeFileAtomic } from '../../util/fs-atomic.ts';
import type { SetupStep, SetupTarget } from './types.ts';
import { previousContent } from './undo.ts';

export function runtimeDirSteps(t: SetupTarget): SetupStep[] {
  const dir = `/run/user/${t.user.uid}`;
  const steps: SetupStep[] = [];
  if (t.live) {
    const have = existsSync(dir);
    steps.push({
      id: 'runtime-dir',
      title: dir,
      status: have ? 'ok' : 'change',
      detail: have ? 'exists' : `create ${dir} (0700, owned by ${t.user.name})`,
      ...(have
        ? {}
        : {
            apply: () => {
              mkdirSync(dir, { recursive: true, mode: 0o700 });
              chownSync(dir, t.user.uid, t.user.gid);
            },
          }),
    });
  }
  const tmpfilesDir = join(t.hostRoot, 'etc/tmpfiles.d');
  if (existsSync(tmpfilesDir)) {
    const file = join(tmpfilesDir, `hutch-${t.user.name}.conf`);
    const want = `d ${dir} 0700 ${t.user.uid} ${t.user.gid} -\n`;
    const ok = readIfExists(file) === want;
    steps.push({
      id: 'runtime-dir:tmpfiles',
      title: 'runtime directory after reboot',
      status: ok ? 'ok' : 'change',
      detail: ok ? file : `write ${file}`,
      ...(ok
        ? {}
        : {
            diff: [`${file}: +${want.trim()}`],
            undo: [{ kind: 'file', path: file, previous: previousContent(file) }],
            apply: () => writeFileAtomic(file, want),
          }),
    });
  }
  return steps;
}
