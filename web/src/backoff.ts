// Reconnect delays: exponential backoff with "full jitter" and a cap.
// Pure and deterministic given the injected random source, so it is unit tested.

export interface BackoffOptions {
  /** Ceiling of the first delay, in ms. */
  readonly baseMs: number;
  /** No delay ever exceeds this, in ms. */
  readonly capMs: number;
  /** After this many consecutive failed attempts the client gives up ("failed"). */
  readonly maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 15_000, maxAttempts: 8 };

/** A source of uniform numbers in [0, 1), like Math.random. */
export type RandomSource = () => number;

/** Upper bound of the delay before attempt `attempt` (1-based): min(cap, base * 2^(attempt-1)). */
export function ceilingMs(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`attempt must be an integer >= 1, got ${attempt}`);
  }
  // Clamp the exponent so 2^n never overflows into Infinity for large attempts.
  const exp = Math.min(attempt - 1, 30);
  return Math.min(opts.capMs, opts.baseMs * 2 ** exp);
}

/**
 * Delay before reconnect attempt `attempt` (1-based), uniformly drawn from [0, ceiling)
 * ("full jitter"), or null once `attempt` exceeds maxAttempts: the caller then gives up.
 */
export function delayMs(
  attempt: number,
  opts: BackoffOptions = DEFAULT_BACKOFF,
  random: RandomSource = Math.random,
): number | null {
  if (attempt > opts.maxAttempts) return null;
  const ceiling = ceilingMs(attempt, opts);
  // Guard against a random source that returns exactly 1 or garbage.
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
  return Math.floor(r * ceiling);
}

/** The whole schedule (one delay per attempt), for display and tests. */
export function schedule(opts: BackoffOptions = DEFAULT_BACKOFF, random: RandomSource = Math.random): number[] {
  const out: number[] = [];
  for (let attempt = 1; attempt <= opts.maxAttempts; attempt++) {
    const d = delayMs(attempt, opts, random);
    if (d === null) break;
    out.push(d);
  }
  return out;
}
