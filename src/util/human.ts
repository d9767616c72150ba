/** Sizes and times as docker prints them. */

/** 4.26MB, 1.2GB, 512B: decimal units, three significant digits. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  // Trailing zeros go only after a decimal point: 100kB must not become 1kB.
  const text = i === 0 ? String(Math.round(v)) : v.toPrecision(3).replace(/\.0+$|(\.\d*?)0+$/, '$1');
  return `${text}${units[i]}`;
}

/** "3 seconds ago", "About a minute ago", "2 hours ago", as docker's CreatedSince. */
export function timeAgo(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t) || t <= 0) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  const ago = (text: string): string => `${text} ago`;
  if (s < 1) return 'Less than a second ago';
  if (s < 60) return ago(`${s} second${s === 1 ? '' : 's'}`);
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute ago';
  if (m < 60) return ago(`${m} minutes`);
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour ago';
  if (h < 48) return ago(`${h} hours`);
  const d = Math.round(s / 86400);
  if (d < 14) return ago(`${d} days`);
  if (d < 60) return ago(`${Math.round(d / 7)} weeks`);
  if (d < 730) return ago(`${Math.round(d / 30)} months`);
  return ago(`${Math.round(d / 365)} years`);
}
