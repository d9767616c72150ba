/**
 * `hutch doctor`: every prerequisite of rootless and rootful use, each PASS,
 * WARN, FAIL or INFO with its reason and the command that fixes it. The
 * checks read the host only through ctx.host (host/view.ts), so they run the
 * same against a recorded host state. The JSON form of the report is the
 * report object itself.
 */
import { probeZfs } from '../../storage/drivers/zfs-probe.ts';
import { realHost } from '../../host/view.ts';
import { probeBtrfs } from '../../storage/drivers/btrfs-probe.ts';
import { runChecks } from './checks.ts';
import { probeOverlay } from './probe.ts';
import type { Check, CheckStatus, DoctorContext, DoctorUser } from './types.ts';
import { TOPICS } from './types.ts';

export type {
  BtrfsProbeResult,
  Check,
  CheckStatus,
  DoctorContext,
  DoctorUser,
  OverlayProbeResult,
  Topic,
} from './types.ts';
export { TOPICS } from './types.ts';
export { runChecks } from './checks.ts';

export interface DoctorReport {
  rootless: boolean;
  user: { name: string; uid: number };
  storePath: string;
  checks: Check[];
  summary: Record<CheckStatus, number>;
  /** No check failed. */
  ok: boolean;
}

export interface LiveOptions {
  user: DoctorUser;
  rootless: boolean;
  storePath: string;
  env: Readonly<Record<string, string | undefined>>;
  /** `[storage] zfs_dataset`, when set. */
  zfsDataset?: string | undefined;
  /** Make the real overlay test mount and, on btrfs, the subvolume test (default true). */
  probe?: boolean | undefined;
}

/** The context for the machine hutch runs on: the live host, the real overlay test mount and btrfs test. */
export function liveDoctorContext(o: LiveOptions): DoctorContext {
  return {
    host: realHost({ path: o.env.PATH }),
    user: o.user,
    rootless: o.rootless,
    storePath: o.storePath,
    env: o.env,
    probeOverlay:
      o.probe === false ? undefined : () => probeOverlay({ storePath: o.storePath, rootless: o.rootless }),
    probeBtrfs: o.probe === false ? undefined : () => probeBtrfs(o.storePath, o.rootless),
    zfsDataset: o.zfsDataset,
    probeZfs: () => probeZfs(o.zfsDataset, o.rootless),
  };
}

export function runDoctor(ctx: DoctorContext): DoctorReport {
  const checks = runChecks(ctx);
  const summary: Record<CheckStatus, number> = { PASS: 0, WARN: 0, FAIL: 0, INFO: 0 };
  for (const c of checks) summary[c.status]++;
  return {
    rootless: ctx.rootless,
    user: { name: ctx.user.name, uid: ctx.user.uid },
    storePath: ctx.storePath,
    checks,
    summary,
    ok: summary.FAIL === 0,
  };
}

const COLORS: Record<CheckStatus, string> = { PASS: '32', WARN: '33', FAIL: '31', INFO: '36' };

export interface RenderOptions {
  color: boolean;
}

/**
 * The human report: one block per topic, one line per check
 * (`PASS  title — reason`, titles padded to one column), each fix on
 * indented `fix:` lines, and a closing summary line.
 */
export function renderDoctorText(report: DoctorReport, options: RenderOptions): string {
  const paint = (code: string, text: string): string =>
    options.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  const bold = (text: string): string => paint('1', text);
  const width = Math.min(28, Math.max(0, ...report.checks.map((c) => c.title.length)));
  const lines: string[] = [
    `hutch doctor: ${report.rootless ? 'rootless' : 'rootful'}, user ${report.user.name} (uid ${report.user.uid}), store ${report.storePath}`,
  ];
  const indent = ' '.repeat(8);
  for (const topic of TOPICS) {
    const group = report.checks.filter((c) => c.topic === topic);
    if (group.length === 0) continue;
    lines.push('', bold(topic));
    for (const c of group) {
      lines.push(`  ${paint(COLORS[c.status], c.status)}  ${c.title.padEnd(width)} — ${c.reason}`);
      if (c.fix) {
        const [first, ...rest] = c.fix.split('\n');
        lines.push(`${indent}${paint('2', 'fix:')} ${first}`);
        for (const r of rest) lines.push(`${indent}     ${r}`);
      }
    }
  }
  const s = report.summary;
  const verdict = report.ok
    ? s.WARN > 0
      ? 'hutch can run here; the warnings say what will not work'
      : 'hutch can run here'
    : 'fix the FAIL items above';
  lines.push(
    '',
    `${bold('Summary:')} ${paint(COLORS.PASS, `${s.PASS} PASS`)}, ${paint(COLORS.WARN, `${s.WARN} WARN`)}, ${paint(COLORS.FAIL, `${s.FAIL} FAIL`)}, ${paint(COLORS.INFO, `${s.INFO} INFO`)}: ${verdict}`,
  );
  return `${lines.join('\n')}\n`;
}
