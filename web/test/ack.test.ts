// Unit tests for the ack throttle and the trailing-edge throttle, on fake timers.

import { describe, expect, it } from 'vitest';

import { AckThrottle } from '../src/ack';
import { TrailingThrottle } from '../src/throttle';

function fakeTimers() {
  let now = 0;
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  return {
    setTimer: (fn: () => void, ms: number) => {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return t;
    },
    clearTimer: (h: unknown) => void ((h as { live: boolean }).live = false),
    /** Move the clock forward, running due timers in order. */
    advance(ms: number) {
      const end = now + ms;
      for (;;) {
        const due = timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        now = due.at;
        due.live = false;
        due.fn();
      }
      now = end;
    },
    get now() {
      return now;
    },
    live: () => timers.filter((t) => t.live).length,
  };
}

describe('AckThrottle', () => {
  it('sends the cumulative offset once per interval', () => {
    const timers = fakeTimers();
    const sent: number[] = [];
    const a = new AckThrottle((o) => sent.push(o), timers, { intervalMs: 16, maxUnackedBytes: 1000 });
    a.start(100);
    a.rendered(110);
    a.rendered(120);
    expect(sent).toEqual([]);
    timers.advance(16);
    expect(sent).toEqual([120]);
    timers.advance(100);
    expect(sent).toEqual([120]);
  });

  it('sends at once when the unacknowledged bytes reach the limit', () => {
    const timers = fakeTimers();
    const sent: number[] = [];
    const a = new AckThrottle((o) => sent.push(o), timers, { intervalMs: 16, maxUnackedBytes: 1000 });
    a.start(0);
    a.rendered(300);
    a.rendered(1000);
    expect(sent).toEqual([1000]);
    expect(timers.live()).toBe(0);
  });

  it('ignores offsets at or below the connection start and after stop()', () => {
    const timers = fakeTimers();
    const sent: number[] = [];
    const a = new AckThrottle((o) => sent.push(o), timers);
    a.start(500);
    a.rendered(400);
    a.rendered(500);
    timers.advance(50);
    expect(sent).toEqual([]);
    a.rendered(600);
    a.stop();
    timers.advance(50);
    expect(sent).toEqual([]);
  });
});

describe('TrailingThrottle', () => {
  it('delivers the last value of a burst, at least the interval apart', () => {
    const timers = fakeTimers();
    const got: [number, number][] = [];
    const t = new TrailingThrottle<number>((v) => got.push([timers.now, v]), timers, 100);
    for (let i = 0; i < 50; i++) {
      t.push(i);
      timers.advance(8); // a storm: one push every 8 ms for 400 ms
    }
    timers.advance(200);
    const gaps = got.slice(1).map(([at], i) => at - (got[i]?.[0] ?? 0));
    expect(gaps.every((g) => g >= 100)).toBe(true);
    expect(got.length).toBeLessThanOrEqual(5);
    expect(got.at(-1)?.[1]).toBe(49);
  });

  it('cancel() drops the pending value', () => {
    const timers = fakeTimers();
    const got: number[] = [];
    const t = new TrailingThrottle<number>((v) => got.push(v), timers, 100);
    t.push(1);
    t.cancel();
    timers.advance(500);
    expect(got).toEqual([]);
  });
});
