/**
 * Where setup's boot service lives, for setup and for `hutch doctor`, which
 * says whether it is in place (kept apart so the doctor loads none of setup).
 */

/** The systemd user unit, in ~/.config/systemd/user. */
export const USER_UNIT = 'hutch-restart.service';

/** The per-user script the other inits run at boot and PAM at login, as the booted host sees it. */
export function bootScriptPath(userName: string): string {
  return `/etc/hutch/boot-${userName}.sh`;
}
