// Output offset tracking (SPEC §8): the offset of the next output byte the terminal will render.
// hello.output_offset starts it, a snapshot moves it, every binary output frame advances it; the
// one binary frame right after a snapshot is the snapshot's payload and does not advance it.

export type BinaryKind = 'snapshot' | 'output';

export class OutputOffset {
  #offset: number | null = null;
  #awaitingPayload = false;

  /** The offset after everything handed to the terminal, or null when the server sends none. */
  get value(): number | null {
    return this.#offset;
  }

  /** A hello: its `output_offset`, if it has one (older servers do not: offsets stay unknown). */
  hello(outputOffset: unknown): void {
    this.#offset = isOffset(outputOffset) ? outputOffset : null;
    this.#awaitingPayload = false;
  }

  /** A snapshot frame: the next binary frame is its payload, and output continues from `offset`. */
  snapshot(offset: unknown): void {
    if (isOffset(offset)) this.#offset = offset;
    this.#awaitingPayload = true;
  }

  /** Classify one binary frame and advance past it when it is output. */
  binary(length: number): BinaryKind {
    if (this.#awaitingPayload) {
      this.#awaitingPayload = false;
      return 'snapshot';
    }
    if (this.#offset !== null) this.#offset += length;
    return 'output';
  }

  /**
   * The connection ended. If it ended between a snapshot frame and its payload, the screen does
   * not show `offset`: forget it, so the next attach joins afresh instead of resuming.
   */
  interrupted(): void {
    if (this.#awaitingPayload) this.clear();
  }

  /** Forget everything (a fresh attach, not a resume). */
  clear(): void {
    this.#offset = null;
    this.#awaitingPayload = false;
  }
}

/** A byte offset: a non-negative integer that a double represents exactly. */
export function isOffset(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
