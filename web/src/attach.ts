// Attach connection controller: cookie ticket -> WebSocket -> reducer -> backoff reconnects,
// with the SPEC §8 output offset (resume, snapshots), acks and throttled resizes.
// DOM-free: ticket request, socket, clock, timers and randomness are injected (unit tested).

import { AckThrottle, type AckOptions, DEFAULT_ACK } from './ack';
import { ApiError } from './api';
import { type BackoffOptions, DEFAULT_BACKOFF, delayMs, type RandomSource } from './backoff';
import { OutputOffset } from './offset';
import {
  type AttachEvent,
  type AttachState,
  canAcquire,
  canRelease,
  canRequest,
  canSendInput,
  initialState,
  parseFrame,
  rateLimited,
  reduce,
  type Role,
} from './protocol';
import { parseSize, parseSnapshot, type TermSize } from './snapshot';
import { TrailingThrottle } from './throttle';
import type { Timers } from './timers';

export const SUBPROTOCOL = 'attach.v1';

export interface SocketHandlers {
  onOpen(): void;
  onText(data: string): void;
  onBinary(data: Uint8Array): void;
  onClose(code: number, reason: string): void;
}

export interface SocketHandle {
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type OpenSocket = (sessionId: string, handlers: SocketHandlers) => SocketHandle;

/** At most one `resize` per this many ms (SPEC §8). */
export const RESIZE_INTERVAL_MS = 100;

export interface AttachDeps extends Timers {
  /**
   * POST the attach ticket (cookie delivery), with `resumeFrom` = the rendered output offset when
   * resuming. Rejects with ApiError (HTTP) or anything else (network).
   */
  requestTicket(sessionId: string, role: Role, resumeFrom: number | null): Promise<void>;
  openSocket: OpenSocket;
  now(): number;
  random?: RandomSource;
  backoff?: BackoffOptions;
  ack?: AckOptions;
  /**
   * Runs `fn` exclusively per key across this origin's tabs (Web Locks). Tabs of one browser
   * share the cookie jar, so ticket POST -> handshake must not interleave for one session.
   */
  exclusive?: (key: string, fn: () => Promise<void>) => Promise<void>;
  /** Longest time the exclusive section waits for the handshake to settle. */
  handshakeWaitMs?: number;
}

export interface AttachCallbacks {
  onState(state: AttachState, prev: AttachState): void;
  /**
   * Terminal output bytes (binary frames, including a snapshot's payload), in order. Call
   * `rendered` once the terminal has written them: that is what the acks report.
   */
  onOutput(bytes: Uint8Array, rendered: () => void): void;
  /**
   * Start over, in order with the output: reset the terminal (to `size` when known). A hello that
   * does not resume, and every snapshot, do this; the replay or snapshot payload follows.
   */
  onReset(size: TermSize | null): void;
  /** The session's PTY size changed (SPEC §8 `size`), in order with the output. */
  onSize?(size: TermSize): void;
  /** Current terminal size, sent as a resize when this connection gains control. */
  getSize?(): TermSize | null;
}

const noop = (): void => {};

const encoder = new TextEncoder();

export class AttachController {
  #state: AttachState = initialState;
  #generation = 0;
  #socket: SocketHandle | null = null;
  #timer: unknown = null;
  readonly #offset = new OutputOffset();
  readonly #acks: AckThrottle;
  /** This connection's server reports offsets, so it understands acks. */
  #acking = false;
  readonly #resize: TrailingThrottle<TermSize>;
  #lastResize: TermSize | null = null;
  readonly #deps: AttachDeps;
  readonly #cb: AttachCallbacks;

  constructor(deps: AttachDeps, callbacks: AttachCallbacks) {
    this.#deps = deps;
    this.#cb = callbacks;
    this.#acks = new AckThrottle((offset) => this.#sendAck(offset), deps, deps.ack ?? DEFAULT_ACK);
    this.#resize = new TrailingThrottle((size) => this.#deliverResize(size), deps, RESIZE_INTERVAL_MS);
  }

  get state(): AttachState {
    return this.#state;
  }

  /** Attach to a session (dropping any current attachment), with a fresh attempt counter. */
  start(sessionId: string, role: Role): void {
    this.#offset.clear();
    this.#begin(sessionId, role);
  }

  /**
   * The Retry button: start over on the same session and role, resuming from what this page has
   * rendered. Refused (false) while a 429's Retry-After window is closed: it would only be refused.
   */
  retry(): boolean {
    const { sessionId, requestedRole } = this.#state;
    if (sessionId === null || requestedRole === null || rateLimited(this.#state, this.#deps.now())) return false;
    this.#begin(sessionId, requestedRole);
    return true;
  }

  #begin(sessionId: string, role: Role): void {
    this.#teardown();
    this.#dispatch({ type: 'attach', sessionId, role });
    void this.#connect();
  }

  /** The output offset this page has handed to its terminal (null: unknown, older server). */
  get outputOffset(): number | null {
    return this.#offset.value;
  }

  /** Detach: close the socket, cancel any retry, forget the session. */
  stop(): void {
    this.#teardown();
    this.#dispatch({ type: 'detach' });
  }

  /** Keystrokes as binary frames; only while this connection holds control. */
  sendInput(data: string): boolean {
    if (!canSendInput(this.#state) || !this.#socket) return false;
    const bytes = encoder.encode(data);
    const max = this.#state.maxMessageBytes ?? 1 << 20;
    for (let off = 0; off < bytes.length; off += max) this.#socket.send(bytes.subarray(off, off + max));
    return true;
  }

  /**
   * The terminal's size changed: sent as a `resize` while this connection holds control, at most
   * one per RESIZE_INTERVAL_MS (the last size of a burst wins). Returns whether one is queued.
   */
  sendResize(cols: number, rows: number): boolean {
    if (!canSendInput(this.#state) || !this.#socket) return false;
    const clamp = (n: number): number => Math.min(Math.max(Math.floor(n), 1), 1000);
    this.#resize.push({ cols: clamp(cols), rows: clamp(rows) });
    return true;
  }

  #deliverResize(size: TermSize): void {
    if (!canSendInput(this.#state) || !this.#socket) return;
    const last = this.#lastResize;
    if (last && last.cols === size.cols && last.rows === size.rows) return;
    this.#lastResize = size;
    this.#socket.send(JSON.stringify({ type: 'resize', cols: size.cols, rows: size.rows }));
  }

  #sendAck(offset: number): void {
    if (this.#acking) this.#socket?.send(JSON.stringify({ type: 'ack', offset }));
  }

  /** A key was pressed while this page may not type: the state's notice says why. */
  typedWhileOff(): void {
    this.#dispatch({ type: 'typed-blocked' });
  }

  acquire(): boolean {
    return this.#control('acquire', canAcquire(this.#state));
  }

  release(): boolean {
    return this.#control('release', canRelease(this.#state));
  }

  /** Ask the holder for control (the "Request control" button while someone holds it). */
  request(): boolean {
    return this.#control('request', canRequest(this.#state));
  }

  /** The holder's answer to a request: `grant` hands control to `to`, `deny` refuses. */
  answer(to: string, grant: boolean): boolean {
    const pending = this.#state.you && this.#state.requests.some((r) => r.connectionId === to);
    return this.#control(grant ? 'grant' : 'deny', pending, to);
  }

  #control(action: 'acquire' | 'release' | 'request' | 'grant' | 'deny', allowed: boolean, to?: string): boolean {
    if (!allowed || !this.#socket) return false;
    this.#socket.send(JSON.stringify(to === undefined ? { type: 'control', action } : { type: 'control', action, to }));
    // Control is being handed away: a resize still queued would reach the server after it.
    if (action === 'grant' || action === 'release') this.#resize.cancel();
    return true;
  }

  #teardown(): void {
    this.#generation++; // late events of the old socket / ticket request are ignored
    if (this.#timer !== null) this.#deps.clearTimer(this.#timer);
    this.#timer = null;
    this.#connectionGone();
    const sock = this.#socket;
    this.#socket = null;
    sock?.close(1000, 'detached');
  }

  /** Per-connection state ends with the socket; the offset survives it (for resuming). */
  #connectionGone(): void {
    this.#acks.stop();
    this.#acking = false;
    this.#resize.cancel();
    this.#lastResize = null;
    this.#offset.interrupted();
  }

  #dispatch(event: AttachEvent): void {
    const prev = this.#state;
    this.#state = reduce(prev, event);
    if (this.#state === prev) return;
    this.#cb.onState(this.#state, prev);
    if (this.#state.you && !prev.you) {
      this.#lastResize = null; // the PTY may have any size now: send ours even if unchanged
      const size = this.#cb.getSize?.();
      if (size) this.sendResize(size.cols, size.rows);
    }
  }

  async #connect(): Promise<void> {
    const gen = ++this.#generation;
    const { sessionId, requestedRole } = this.#state;
    if (sessionId === null || requestedRole === null) return;
    this.#dispatch({ type: 'connecting' });
    const exclusive = this.#deps.exclusive;
    if (!exclusive) {
      await this.#ticketThenSocket(gen, sessionId, requestedRole, false);
      return;
    }
    try {
      await exclusive(`attachd-ticket:${sessionId}`, () => this.#ticketThenSocket(gen, sessionId, requestedRole, true));
    } catch {
      // Lock manager unavailable: proceed unserialised rather than not at all.
      if (gen === this.#generation && this.#socket === null) await this.#ticketThenSocket(gen, sessionId, requestedRole, false);
    }
  }

  async #ticketThenSocket(gen: number, sessionId: string, role: Role, waitForHandshake: boolean): Promise<void> {
    if (gen !== this.#generation) return;
    try {
      // A fresh single-use ticket for every attempt; it arrives as an HttpOnly cookie.
      await this.#deps.requestTicket(sessionId, role, this.#offset.value);
    } catch (err) {
      if (gen !== this.#generation) return;
      const status = err instanceof ApiError ? err.status : null;
      const message = err instanceof Error ? err.message : String(err);
      const wait = err instanceof ApiError ? err.retryAfterMs : null;
      const retryAt = wait === null ? null : this.#deps.now() + wait;
      this.#dispatch({ type: 'ticket-failed', status, message, retryAt });
      this.#scheduleRetry();
      return;
    }
    if (gen !== this.#generation) return;
    let settle: () => void = () => {};
    const settled = new Promise<void>((resolve) => (settle = resolve));
    let opened = false;
    this.#socket = this.#deps.openSocket(sessionId, {
      onOpen: () => {
        opened = true;
        settle();
      },
      onText: (data) => {
        if (gen !== this.#generation) return;
        this.#onText(data);
        this.#dispatch({ type: 'message', data });
      },
      onBinary: (bytes) => {
        if (gen === this.#generation) this.#onBinary(bytes);
      },
      onClose: (code, reason) => {
        settle();
        if (gen !== this.#generation) return;
        this.#socket = null;
        this.#connectionGone();
        this.#dispatch({ type: 'close', code, reason, beforeOpen: !opened });
        this.#scheduleRetry();
      },
    });
    if (!waitForHandshake) return;
    // The handshake consumes the cookie; hold the lock until it has (or a timeout passes).
    const timer = this.#deps.setTimer(settle, this.#deps.handshakeWaitMs ?? 10_000);
    await settled;
    this.#deps.clearTimer(timer);
  }

  /** Terminal-side effects of the text frames; the reducer handles the rest. */
  #onText(data: string): void {
    const f = parseFrame(data);
    switch (f?.type) {
      case 'hello': {
        this.#offset.hello(f.output_offset);
        const start = this.#offset.value;
        this.#acking = start !== null;
        if (start !== null) this.#acks.start(start);
        this.#lastResize = null;
        // A resumed stream continues on the screen as it is; anything else starts over.
        const size = parseSize(f.size);
        if (f.resumed !== true) this.#cb.onReset(size);
        else if (size) this.#cb.onSize?.(size);
        break;
      }
      case 'snapshot': {
        const snap = parseSnapshot(f);
        this.#offset.snapshot(snap.offset);
        this.#cb.onReset(snap.size);
        break;
      }
      case 'size': {
        const size = parseSize(f);
        if (size) this.#cb.onSize?.(size);
        break;
      }
    }
  }

  #onBinary(bytes: Uint8Array): void {
    this.#offset.binary(bytes.length);
    const end = this.#offset.value;
    this.#cb.onOutput(bytes, end === null ? noop : () => this.#acks.rendered(end));
  }

  #scheduleRetry(): void {
    if (!this.#state.reconnect) return;
    const now = this.#deps.now();
    const until = this.#state.rateLimitedUntil;
    if (until !== null) {
      // Wait out the 429's Retry-After; that wait is not a failed attempt of the backoff.
      this.#retryAt(this.#state.attempt, until, Math.max(0, until - now));
      return;
    }
    const attempt = this.#state.attempt + 1;
    const delay = delayMs(attempt, this.#deps.backoff ?? DEFAULT_BACKOFF, this.#deps.random ?? Math.random);
    if (delay === null) {
      this.#dispatch({ type: 'give-up' });
      return;
    }
    this.#retryAt(attempt, now + delay, delay);
  }

  #retryAt(attempt: number, at: number, delay: number): void {
    this.#dispatch({ type: 'retry-scheduled', attempt, at });
    this.#timer = this.#deps.setTimer(() => {
      this.#timer = null;
      void this.#connect();
    }, delay);
  }
}

/** The real socket: same-origin attach path, `attach.v1`, no credential in the URL. */
export function openBrowserSocket(url: string, handlers: SocketHandlers): SocketHandle {
  const ws = new WebSocket(url, [SUBPROTOCOL]);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => handlers.onOpen();
  ws.onmessage = (ev: MessageEvent<unknown>) => {
    if (typeof ev.data === 'string') handlers.onText(ev.data);
    else if (ev.data instanceof ArrayBuffer) handlers.onBinary(new Uint8Array(ev.data));
  };
  ws.onclose = (ev: CloseEvent) => handlers.onClose(ev.code, ev.reason);
  return {
    send: (data) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(data);
    },
    close: (code, reason) => ws.close(code, reason),
  };
}
