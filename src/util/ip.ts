/**
 * Whether a text is an IP address, and of which family: what node:net's
 * isIP answers, without loading node:net (which brings Node's stream and
 * socket machinery, about 3 ms, into every `run` that writes /etc/hosts).
 */

const V4_PART = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)$/;
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;
/** What may follow "%" in a scoped IPv6 address (fe80::1%eth0). */
const ZONE = /^[0-9a-zA-Z.:-]+$/;

/** 4, 6, or 0 when TEXT is neither an IPv4 nor an IPv6 address. */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (isIPv4(text)) return 4;
  return isIPv6(text) ? 6 : 0;
}

/** Dotted decimal, four parts of 0-255 without leading zeros. */
export function isIPv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => V4_PART.test(p));
}

/**
 * Eight groups of up to four hex digits, or fewer with one "::" standing for
 * at least one zero group; the last 32 bits may be written as IPv4; a zone
 * may follow "%".
 */
export function isIPv6(text: string): boolean {
  const pct = text.indexOf('%');
  if (pct >= 0 && !ZONE.test(text.slice(pct + 1))) return false;
  const addr = pct >= 0 ? text.slice(0, pct) : text;
  const halves = addr.split('::');
  if (halves.length > 2) return false;
  const groupsOf = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  // An IPv4 tail is allowed only at the very end of the address.
  const last = halves.length === 2 ? tail : head;
  let units = 0;
  for (const [list, isLast] of [
    [head, head === last],
    [tail, tail === last],
  ] as const) {
    for (let i = 0; i < list.length; i++) {
      const g = list[i]!;
      if (isLast && i === list.length - 1 && g.includes('.')) {
        if (!isIPv4(g)) return false;
        units += 2;
      } else if (V6_GROUP.test(g)) {
        units += 1;
      } else {
        return false;
      }
    }
  }
  return halves.length === 2 ? units <= 7 : units === 8;
}
