// The timer pair every time-driven piece of the client is given (window timers in the page,
// fakes in the unit tests).

export interface Timers {
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}
