/** `hutch doctor` for the user running it, on this machine. */
import { lookupUser } from '../host/passwd.ts';
import type { Context } from './context.ts';
import { liveDoctorContext, runDoctor } from './doctor/index.ts';
import type { DoctorReport } from './doctor/index.ts';

export function doctor(ctx: Context, opts: { probe: boolean }): DoctorReport {
  const { uid, gid } = ctx.ident;
  const name = lookupUser(uid)?.name ?? process.env.USER ?? String(uid);
  return runDoctor(
    liveDoctorContext({
      user: { uid, gid, name, groups: process.getgroups?.() },
      rootless: ctx.ident.rootless,
      storePath: ctx.paths.root,
      env: process.env,
      probe: opts.probe,
      zfsDataset: ctx.zfsDataset,
    }),
  );
}
