/**
 * `logs --since` / `--until` values, read the way docker reads them
 * (api/types/time GetTimestamp): a Go duration back from now, else an
 * RFC 3339 time (zone optional, then local time; a date alone is local
 * midnight), else Unix seconds with an optional fraction.
 */
import { HutchError } from '../../util/errors.ts';
import { civilToNs, fractionToNs, msToNs, NS_PER_SECOND, parseOffset } from './time.ts';

const NS_PER_UNIT: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu: Go accepts both
  ms: 1_000_000n,
  s: NS_PER_SECOND,
  m: 60n * NS_PER_SECOND,
  h: 3600n * NS_PER_SECOND,
};

// Longer units first, so "ms" is not read as "m" followed by junk.
const DURATION_PART = /(\d*)(?:\.(\d*))?(ns|us|\u00b5s|\u03bcs|ms|h|m|s)/y;

/** A Go duration ("1h30m", "1.5h", "-10s") in nanoseconds, or undefined. */
export function parseGoDuration(value: string): bigint | undefined {
  let i = 0;
  let sign = 1n;
  if (value[0] === '-' || value[0] === '+') {
    sign = value[0] === '-' ? -1n : 1n;
    i = 1;
  }
  if (i === value.length) return undefined;
  let total = 0n;
  while (i < value.length) {
    DURATION_PART.lastIndex = i;
    const m = DURATION_PART.exec(value);
    if (!m) return undefined;
    const [, whole = '', frac = '', unit = ''] = m;
    if (whole === '' && frac === '') return undefined;
    const perUnit = NS_PER_UNIT[unit]!;
    total += BigInt(whole || '0') * perUnit;
    // Exact: the fraction's digits times the unit, over their power of ten.
    if (frac !== '') total += (BigInt(frac) * perUnit) / 10n ** BigInt(frac.length);
    i = DURATION_PART.lastIndex;
  }
  return sign * total;
}

// Docker accepts the time cut after the hour or minute too; a fraction only after seconds.
const RFC3339ISH =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?([Zz]|[+-]\d{2}:\d{2})?$/;

function parseRfc3339ish(value: string): bigint | undefined {
  const m = RFC3339ISH.exec(value);
  if (!m) return undefined;
  const zone = m[8];
  const offsetMinutes = zone === undefined ? undefined : parseOffset(zone);
  if (zone !== undefined && offsetMinutes === undefined) return undefined;
  return civilToNs({
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: Number(m[4] ?? 0),
    minute: Number(m[5] ?? 0),
    second: Number(m[6] ?? 0),
    fraction: m[7] ?? '',
    offsetMinutes,
  });
}

const UNIX_SECONDS = /^(\d+)(?:\.(\d+))?$/;

function badTime(value: string): HutchError {
  return new HutchError(
    'BAD_FLAG',
    `invalid time ${JSON.stringify(value)}: expected an RFC 3339 timestamp, a Unix timestamp or a duration`,
    {
      hint:
        'Give a timestamp such as 2026-11-22T08:58:12Z, 2026-11-22T08:58:12.5+01:00, 2026-11-22T08:58 or 2026-11-22 ' +
        '(local time when no zone is given), Unix seconds such as 1700000000 or 1700000000.5, ' +
        'or a duration before now such as 45s, 10m, 1h30m or 1.5h.',
    },
  );
}

/** A --since / --until value as nanoseconds since the epoch; `now` is in milliseconds. */
export function parseTimeFilter(value: string, now = Date.now()): bigint {
  // Docker reads "0" as the Unix epoch, not as a zero duration.
  if (value !== '0') {
    const duration = parseGoDuration(value);
    if (duration !== undefined) return msToNs(now) - duration;
  }
  const time = parseRfc3339ish(value);
  if (time !== undefined) return time;
  const unix = UNIX_SECONDS.exec(value);
  if (unix) return BigInt(unix[1]!) * NS_PER_SECOND + fractionToNs(unix[2] ?? '');
  throw badTime(value);
}
