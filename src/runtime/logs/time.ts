/**
 * RFC 3339 timestamps as exact nanoseconds since the epoch. A bigint keeps
 * all nine fraction digits that conmon writes, which a Date (milliseconds)
 * or a double (about a quarter microsecond near 2026) would round away.
 */

export const NS_PER_SECOND = 1_000_000_000n;
const NS_PER_MS = 1_000_000n;

/** A wall-clock time in milliseconds (Date.now()) as nanoseconds. */
export function msToNs(ms: number): bigint {
  return BigInt(Math.trunc(ms)) * NS_PER_MS;
}

export interface CivilTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** The fraction's digits as written, '' for none. */
  fraction: string;
  /** Minutes east of UTC; undefined means the local time zone. */
  offsetMinutes: number | undefined;
}

/** "+05:30" / "-08:00" / "Z" as minutes east of UTC, or undefined when out of range. */
export function parseOffset(zone: string): number | undefined {
  if (zone === 'Z' || zone === 'z') return 0;
  const hours = Number(zone.slice(1, 3));
  const minutes = Number(zone.slice(4, 6));
  if (hours > 23 || minutes > 59) return undefined;
  return (zone[0] === '-' ? -1 : 1) * (hours * 60 + minutes);
}

/**
 * The instant a civil time names, or undefined when a field is out of range
 * (month 13, February 30, second 60: Go's time.Parse refuses these too).
 */
export function civilToNs(t: CivilTime): bigint | undefined {
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.hour > 23 || t.minute > 59 || t.second > 59)
    return undefined;
  // setFullYear, unlike Date.UTC, does not move years 0-99 into the 1900s.
  const d = new Date(0);
  if (t.offsetMinutes === undefined) {
    d.setFullYear(t.year, t.month - 1, t.day);
    d.setHours(t.hour, t.minute, t.second, 0);
    if (d.getDate() !== t.day) return undefined;
  } else {
    d.setUTCFullYear(t.year, t.month - 1, t.day);
    d.setUTCHours(t.hour, t.minute, t.second, 0);
    if (d.getUTCDate() !== t.day) return undefined;
  }
  const ms = d.getTime() - (t.offsetMinutes ?? 0) * 60_000;
  if (Number.isNaN(ms)) return undefined;
  return msToNs(ms) + fractionToNs(t.fraction);
}

/** ".5" → 500000000: the digits after the point as nanoseconds, beyond nine truncated. */
export function fractionToNs(digits: string): bigint {
  if (digits === '') return 0n;
  return BigInt(digits.slice(0, 9).padEnd(9, '0'));
}

/**
 * RFC 3339 in UTC with all nine fraction digits, docker's RFC3339NanoFixed
 * (`logs -t`): fixed width, so timestamps line up in a column.
 */
export function formatUtcNs(ns: bigint): string {
  let seconds = ns / NS_PER_SECOND;
  let nanos = ns % NS_PER_SECOND;
  if (nanos < 0n) {
    // bigint division truncates toward zero; instants before 1970 need floor.
    seconds -= 1n;
    nanos += NS_PER_SECOND;
  }
  const whole = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  return `${whole}.${nanos.toString().padStart(9, '0')}Z`;
}
