// Unit tests of the recording player: asciicast parsing, the skip-idle timeline, and play,
// pause, seek and speed on a fake clock and screen.

import { describe, expect, it } from 'vitest';

import { CastError, clockText, dueCount, parseCast, parseSize, timeline } from '../src/cast';
import { IDLE_CAP, Player, type PlayerClock, type PlayerScreen } from '../src/player';

const header = JSON.stringify({ version: 2, width: 80, height: 24, timestamp: 1_700_000_000, title: 's-1' });
const cast = [
  header,
  '[0.5, "o", "a"]',
  '[1.0, "m", "join driver alice"]',
  '[1.0, "o", "b"]',
  '[11.0, "r", "100x30"]',
  '[11.5, "i", "typed"]',
  '[12.0, "o", "c"]',
].join('\n');

class FakeScreen implements PlayerScreen {
  text = '';
  size = '';
  resets = 0;
  reset(cols: number, rows: number): void {
    this.text = '';
    this.size = `${cols}x${rows}`;
    this.resets++;
  }
  write(data: string): void {
    this.text += data;
  }
  resize(cols: number, rows: number): void {
    this.size = `${cols}x${rows}`;
  }
}

class FakeClock implements PlayerClock {
  t = 0;
  timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimer(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Advances time, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
    }
    this.t = end;
  }
}

describe('asciicast parsing', () => {
  it('reads the header and events', () => {
    const c = parseCast(cast);
    expect(c.header).toEqual({ width: 80, height: 24, timestamp: 1_700_000_000, title: 's-1' });
    expect(c.events.map((e) => e.code).join('')).toBe('omorio');
    expect(parseSize('100x30')).toEqual({ cols: 100, rows: 30 });
    expect(parseSize('100 x 30')).toBeNull();
  });

  it('refuses what is not asciicast v2, and times that go back', () => {
    expect(() => parseCast('')).toThrow(CastError);
    expect(() => parseCast('{"version":1,"width":80,"height":24}')).toThrow(/version 2/);
    expect(() => parseCast(`${header}\n[2, "o", "x"]\n[1, "o", "y"]`)).toThrow(/goes back/);
    expect(() => parseCast(`${header}\n{"o": 1}`)).toThrow(/not \[time/);
  });

  it('skip idle caps pauses; dueCount finds what is due', () => {
    const { events } = parseCast(cast);
    expect(timeline(events, null)).toEqual([0.5, 1, 1, 11, 11.5, 12]);
    expect(timeline(events, IDLE_CAP)).toEqual([0.5, 1, 1, 2, 2.5, 3]);
    const t = timeline(events, null);
    expect(dueCount(t, 0)).toBe(0);
    expect(dueCount(t, 1)).toBe(3);
    expect(dueCount(t, 100)).toBe(6);
    expect(clockText(75.9)).toBe('1:15');
  });
});

describe('player', () => {
  it('plays in real time, pauses and resumes', () => {
    const screen = new FakeScreen();
    const clock = new FakeClock();
    const p = new Player(parseCast(cast), screen, clock, false);
    expect(screen.size).toBe('80x24');
    p.play();
    clock.advance(600);
    expect(screen.text).toBe('a');
    p.pause();
    clock.advance(5000);
    expect(screen.text).toBe('a');
    expect(p.position).toBeCloseTo(0.6);
    p.play();
    clock.advance(500);
    expect(screen.text).toBe('ab');
    clock.advance(10_000);
    expect(screen.size).toBe('100x30');
    expect(screen.text).toBe('ab');
    clock.advance(1000);
    expect(screen.text).toBe('abc');
    expect(p.playing).toBe(false);
    expect(p.position).toBe(12);
  });

  it('skip idle shortens the long pause; speed multiplies', () => {
    const screen = new FakeScreen();
    const clock = new FakeClock();
    const p = new Player(parseCast(cast), screen, clock, true);
    expect(p.duration).toBe(3);
    p.setSpeed(2);
    p.play();
    clock.advance(1000); // 2 s of play time
    expect(screen.text).toBe('ab');
    expect(screen.size).toBe('100x30');
    clock.advance(500);
    expect(screen.text).toBe('abc');
  });

  it('seeks forward by writing and back by replaying from a reset', () => {
    const screen = new FakeScreen();
    const clock = new FakeClock();
    const p = new Player(parseCast(cast), screen, clock, false);
    p.seek(12);
    expect(screen.text).toBe('abc');
    expect(screen.size).toBe('100x30');
    const resets = screen.resets;
    p.seek(0.7);
    expect(screen.resets).toBe(resets + 1);
    expect(screen.text).toBe('a');
    expect(screen.size).toBe('80x24');
    p.seek(-5);
    expect(p.position).toBe(0);
    p.seek(99);
    expect(p.position).toBe(12);
  });

  it('switching skip idle keeps the screen and the place between events', () => {
    const screen = new FakeScreen();
    const clock = new FakeClock();
    const p = new Player(parseCast(cast), screen, clock, false);
    p.seek(6); // halfway through the 10 s pause
    p.setSkipIdle(true);
    expect(p.position).toBeCloseTo(1.5);
    expect(screen.text).toBe('ab');
    p.setSkipIdle(false);
    expect(p.position).toBeCloseTo(6);
  });

  it('play at the end starts over', () => {
    const screen = new FakeScreen();
    const clock = new FakeClock();
    const p = new Player(parseCast(cast), screen, clock, true);
    p.seek(99);
    p.play();
    expect(p.position).toBe(0);
    expect(screen.text).toBe('');
    clock.advance(3000);
    expect(screen.text).toBe('abc');
  });
});
