// Unit tests for the reconnect backoff schedule (exponential, full jitter, cap, give-up).
// Randomness is injected, so every expectation is exact.

import { describe, expect, it } from 'vitest';

import { ceilingMs, DEFAULT_BACKOFF, delayMs, schedule } from '../src/backoff';

const opts = { baseMs: 500, capMs: 15_000, maxAttempts: 8 };

describe('ceilingMs', () => {
  it('doubles from the base and stops at the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((a) => ceilingMs(a, opts))).toEqual([
      500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000,
    ]);
  });

  it('never overflows for huge attempt numbers', () => {
    expect(ceilingMs(10_000, opts)).toBe(15_000);
  });

  it('rejects attempt numbers below 1', () => {
    expect(() => ceilingMs(0, opts)).toThrow(RangeError);
    expect(() => ceilingMs(1.5, opts)).toThrow(RangeError);
  });
});

describe('delayMs (full jitter)', () => {
  it('is random() times the ceiling, floored', () => {
    expect(delayMs(1, opts, () => 0.5)).toBe(250);
    expect(delayMs(4, opts, () => 0.25)).toBe(1000);
    expect(delayMs(7, opts, () => 0.5)).toBe(7500);
  });

  it('spans [0, ceiling) and stays below the cap', () => {
    expect(delayMs(3, opts, () => 0)).toBe(0);
    expect(delayMs(3, opts, () => 0.999999)).toBe(1999);
    expect(delayMs(8, opts, () => 1)).toBeLessThan(15_000);
  });

  it('clamps a misbehaving random source', () => {
    expect(delayMs(2, opts, () => -3)).toBe(0);
    expect(delayMs(2, opts, () => 7)).toBe(999);
  });

  it('returns null after maxAttempts so the caller gives up', () => {
    expect(delayMs(8, opts, () => 0.5)).not.toBeNull();
    expect(delayMs(9, opts, () => 0.5)).toBeNull();
  });
});

describe('schedule', () => {
  it('has one delay per allowed attempt', () => {
    expect(schedule(opts, () => 0.5)).toEqual([250, 500, 1000, 2000, 4000, 7500, 7500, 7500]);
  });

  it('defaults to base 500 ms, cap 15 s, 8 attempts', () => {
    expect(DEFAULT_BACKOFF).toEqual(opts);
    const max = schedule(DEFAULT_BACKOFF, () => 0.9999999);
    expect(max).toHaveLength(8);
    expect(Math.max(...max)).toBeLessThan(15_000);
  });

  it('draws a fresh random number per attempt', () => {
    const values = [0.1, 0.9, 0.3];
    let i = 0;
    const d = schedule({ baseMs: 1000, capMs: 1000, maxAttempts: 3 }, () => values[i++] ?? 0);
    expect(d).toEqual([100, 900, 300]);
  });
});
