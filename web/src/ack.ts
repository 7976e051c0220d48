// Ack throttle (SPEC §8 flow control): the terminal reports each rendered offset; acks go out
// cumulatively, at most one per `intervalMs`, or at once when `maxUnackedBytes` are unacknowledged.

import type { Timers } from './timers';

export interface AckOptions {
  readonly intervalMs: number;
  readonly maxUnackedBytes: number;
}

export const DEFAULT_ACK: AckOptions = { intervalMs: 16, maxUnackedBytes: 64 * 1024 };

export class AckThrottle {
  #sent = 0;
  #rendered = 0;
  #timer: unknown = null;
  readonly #send: (offset: number) => void;
  readonly #timers: Timers;
  readonly #opts: AckOptions;

  constructor(send: (offset: number) => void, timers: Timers, opts: AckOptions = DEFAULT_ACK) {
    this.#send = send;
    this.#timers = timers;
    this.#opts = opts;
  }

  /** A new connection starts at `offset`: the server knows everything before it is rendered. */
  start(offset: number): void {
    this.stop();
    this.#sent = offset;
    this.#rendered = offset;
  }

  /** Cancel a pending ack (the connection is gone). */
  stop(): void {
    if (this.#timer !== null) this.#timers.clearTimer(this.#timer);
    this.#timer = null;
  }

  /** Output up to `offset` has been rendered. Offsets at or below the last ack are ignored. */
  rendered(offset: number): void {
    if (offset <= this.#rendered) return;
    this.#rendered = offset;
    if (this.#rendered - this.#sent >= this.#opts.maxUnackedBytes) {
      this.#flush();
    } else if (this.#timer === null) {
      this.#timer = this.#timers.setTimer(() => {
        this.#timer = null;
        this.#flush();
      }, this.#opts.intervalMs);
    }
  }

  #flush(): void {
    this.stop();
    if (this.#rendered <= this.#sent) return;
    this.#sent = this.#rendered;
    this.#send(this.#sent);
  }
}
