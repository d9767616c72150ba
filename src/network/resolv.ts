/** The host's resolvers, as user-mode networks need them. */

/** Where pasta answers as the host's resolver (--dns-forward) when that resolver is on the host's loopback. */
export const PASTA_DNS_FORWARD = '169.254.1.1';

/** The nameserver addresses of a resolv.conf text. */
export function nameservers(resolvConf: string): string[] {
  return resolvConf
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((s): s is string => s !== undefined);
}

/** Whether every resolver is on the host's loopback, out of a namespace's reach (systemd-resolved's 127.0.0.53). */
export function onlyLoopbackResolvers(resolvConf: string): boolean {
  return nameservers(resolvConf).every((s) => s.startsWith('127.') || s === '::1');
}
