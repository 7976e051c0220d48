// The recording player's logic: play/pause, seek, speed and skip idle over a parsed asciicast,
// writing to a screen it is given (xterm.js in the page, a fake in unit tests) on a given clock.

import { type Cast, dueCount, parseSize, timeline } from './cast';

/** Where the player draws. */
export interface PlayerScreen {
  /** A fresh terminal of this size. */
  reset(cols: number, rows: number): void;
  write(data: string): void;
  resize(cols: number, rows: number): void;
}

export interface PlayerClock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/** Pauses longer than this are shortened to it while skip idle is on (seconds). */
export const IDLE_CAP = 1;
export const SPEEDS = [0.5, 1, 2, 4, 8] as const;

export class Player {
  readonly #cast: Cast;
  readonly #screen: PlayerScreen;
  readonly #clock: PlayerClock;
  #times: number[];
  #skipIdle: boolean;
  #speed = 1;
  /** Events written to the screen so far. */
  #applied = 0;
  /** Play position (seconds) at `#since` (clock ms), while playing; the position when paused. */
  #pos = 0;
  #since = 0;
  #playing = false;
  #timer: unknown = null;
  onChange: () => void = () => {};

  constructor(cast: Cast, screen: PlayerScreen, clock: PlayerClock, skipIdle = true) {
    this.#cast = cast;
    this.#screen = screen;
    this.#clock = clock;
    this.#skipIdle = skipIdle;
    this.#times = timeline(cast.events, skipIdle ? IDLE_CAP : null);
    screen.reset(cast.header.width, cast.header.height);
  }

  get duration(): number {
    return this.#times.length ? this.#times[this.#times.length - 1]! : 0;
  }

  get position(): number {
    if (!this.#playing) return this.#pos;
    return Math.min(this.duration, this.#pos + ((this.#clock.now() - this.#since) / 1000) * this.#speed);
  }

  get playing(): boolean {
    return this.#playing;
  }

  get speed(): number {
    return this.#speed;
  }

  get skipIdle(): boolean {
    return this.#skipIdle;
  }

  /** Events already on the screen. */
  get applied(): number {
    return this.#applied;
  }

  play(): void {
    if (this.#playing) return;
    if (this.#pos >= this.duration) this.seek(0);
    this.#playing = true;
    this.#since = this.#clock.now();
    this.#tick();
  }

  pause(): void {
    if (!this.#playing) return;
    this.#pos = this.position;
    this.#playing = false;
    this.#cancel();
    this.onChange();
  }

  toggle(): void {
    if (this.#playing) this.pause();
    else this.play();
  }

  /** Jumps to `t` seconds of play time: forward by writing what is due, back by replaying. */
  seek(t: number): void {
    const pos = Math.max(0, Math.min(this.duration, t));
    const due = dueCount(this.#times, pos);
    if (due < this.#applied) {
      this.#screen.reset(this.#cast.header.width, this.#cast.header.height);
      this.#applied = 0;
    }
    this.#apply(due);
    this.#pos = pos;
    this.#since = this.#clock.now();
    if (this.#playing) {
      this.#cancel();
      this.#tick();
    } else {
      this.onChange();
    }
  }

  setSpeed(speed: number): void {
    this.#pos = this.position;
    this.#since = this.#clock.now();
    this.#speed = speed > 0 ? speed : 1;
    if (this.#playing) {
      this.#cancel();
      this.#tick();
    }
    this.onChange();
  }

  /** Turns idle skipping on or off, keeping the screen where it is. */
  setSkipIdle(on: boolean): void {
    if (on === this.#skipIdle) return;
    const at = this.position;
    const due = dueCount(this.#times, at);
    // The same place in the new timeline: between the last event shown and the next one.
    const before = due > 0 ? this.#times[due - 1]! : 0;
    const frac = due < this.#times.length ? (at - before) / Math.max(1e-9, this.#times[due]! - before) : 0;
    this.#skipIdle = on;
    this.#times = timeline(this.#cast.events, on ? IDLE_CAP : null);
    const nb = due > 0 ? this.#times[due - 1]! : 0;
    const na = due < this.#times.length ? this.#times[due]! : nb;
    this.#pos = nb + Math.min(1, Math.max(0, frac)) * (na - nb);
    this.#since = this.#clock.now();
    if (this.#playing) {
      this.#cancel();
      this.#tick();
    }
    this.onChange();
  }

  #cancel(): void {
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  /** Writes events up to `due` (consecutive output in one write). */
  #apply(due: number): void {
    const events = this.#cast.events;
    let out = '';
    const flush = (): void => {
      if (out) this.#screen.write(out);
      out = '';
    };
    for (; this.#applied < due; this.#applied++) {
      const e = events[this.#applied]!;
      if (e.code === 'o') out += e.data;
      else if (e.code === 'r') {
        const size = parseSize(e.data);
        if (size) {
          flush();
          this.#screen.resize(size.cols, size.rows);
        }
      }
    }
    flush();
  }

  #tick(): void {
    this.#timer = null;
    const pos = this.position;
    this.#apply(dueCount(this.#times, pos));
    if (this.#applied >= this.#times.length) {
      this.#pos = this.duration;
      this.#playing = false;
      this.onChange();
      return;
    }
    const next = this.#times[this.#applied]!;
    // At most 4 updates a second of the position while waiting for a distant event.
    const wait = Math.min(250, Math.max(0, ((next - pos) * 1000) / this.#speed));
    this.#timer = this.#clock.setTimer(() => this.#tick(), wait);
    this.onChange();
  }
}
