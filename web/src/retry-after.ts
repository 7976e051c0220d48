// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date, as a wait in ms from `now`.

/** The wait in ms (>= 0), or null when the header is absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  if (value === null || value === undefined) return null;
  const v = value.trim();
  if (v === '') return null;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return null; // an HTTP date names its day and month
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
