// Trailing-edge throttle: values pushed within one interval collapse into the last one, which is
// delivered when the interval ends, so deliveries are at least `intervalMs` apart (resize, SPEC §8).

import type { Timers } from './timers';

export class TrailingThrottle<T> {
  #pending: { value: T } | null = null;
  #timer: unknown = null;
  readonly #deliver: (value: T) => void;
  readonly #timers: Timers;
  readonly #intervalMs: number;

  constructor(deliver: (value: T) => void, timers: Timers, intervalMs: number) {
    this.#deliver = deliver;
    this.#timers = timers;
    this.#intervalMs = intervalMs;
  }

  /** Queue `value`; it replaces any value not yet delivered. */
  push(value: T): void {
    this.#pending = { value };
    if (this.#timer !== null) return;
    this.#timer = this.#timers.setTimer(() => {
      this.#timer = null;
      const p = this.#pending;
      this.#pending = null;
      if (p) this.#deliver(p.value);
    }, this.#intervalMs);
  }

  /** Drop any value not yet delivered. */
  cancel(): void {
    if (this.#timer !== null) this.#timers.clearTimer(this.#timer);
    this.#timer = null;
    this.#pending = null;
  }
}
