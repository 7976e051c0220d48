// Unit tests for observer placement (scale down to fit, never up, centred) and Retry-After parsing.

import { describe, expect, it } from 'vitest';

import { parseRetryAfter } from '../src/retry-after';
import { placeTerminal } from '../src/scale';

describe('placeTerminal', () => {
  it('scales a larger session down to the container, keeping its aspect', () => {
    const p = placeTerminal({ width: 800, height: 600 }, { width: 1600, height: 600 });
    expect(p.scale).toBe(0.5);
    expect(p.x).toBe(0);
  });

  it('never scales up: a smaller session is letterboxed, centred horizontally', () => {
    expect(placeTerminal({ width: 1000, height: 800 }, { width: 600, height: 400 })).toEqual({ scale: 1, x: 200, y: 0 });
  });

  it('the tighter dimension decides', () => {
    const p = placeTerminal({ width: 1000, height: 300 }, { width: 800, height: 600 });
    expect(p.scale).toBe(0.5);
    expect(p.x).toBe(300);
  });

  it('empty boxes give the identity', () => {
    expect(placeTerminal({ width: 0, height: 0 }, { width: 10, height: 10 })).toEqual({ scale: 1, x: 0, y: 0 });
    expect(placeTerminal({ width: 10, height: 10 }, { width: 0, height: 10 })).toEqual({ scale: 1, x: 0, y: 0 });
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('12', now)).toBe(12_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
  });

  it('is null when absent or unreadable', () => {
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter('', now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter('-5', now)).toBeNull();
  });
});
