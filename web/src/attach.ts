// Attach connection controller: cookie ticket -> WebSocket -> reducer -> backoff reconnects.
// DOM-free: ticket request, socket, clock, timers and randomness are injected (unit tested).

import { ApiError } from './api';
import { type BackoffOptions, DEFAULT_BACKOFF, delayMs, type RandomSource } from './backoff';
import {
  type AttachEvent,
  type AttachState,
  canAcquire,
  canRelease,
  canSendInput,
  initialState,
  isHello,
  reduce,
  type Role,
} from './protocol';

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

export interface AttachDeps {
  /** POST the attach ticket (cookie delivery). Rejects with ApiError (HTTP) or anything else (network). */
  requestTicket(sessionId: string, role: Role): Promise<void>;
  openSocket: OpenSocket;
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  random?: RandomSource;
  backoff?: BackoffOptions;
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
  /** Terminal output bytes (binary frames), in order. */
  onOutput(bytes: Uint8Array): void;
  /** A hello arrived: clear the terminal, the server's scrollback replay follows. */
  onReset(): void;
  /** Current terminal size, sent as a resize when this connection gains control. */
  getSize?(): { cols: number; rows: number } | null;
}

const encoder = new TextEncoder();

export class AttachController {
  #state: AttachState = initialState;
  #generation = 0;
  #socket: SocketHandle | null = null;
  #timer: unknown = null;
  readonly #deps: AttachDeps;
  readonly #cb: AttachCallbacks;

  constructor(deps: AttachDeps, callbacks: AttachCallbacks) {
    this.#deps = deps;
    this.#cb = callbacks;
  }

  get state(): AttachState {
    return this.#state;
  }

  /** Attach to a session (dropping any current attachment), with a fresh attempt counter. */
  start(sessionId: string, role: Role): void {
    this.#teardown();
    this.#dispatch({ type: 'attach', sessionId, role });
    void this.#connect();
  }

  /** The Retry button: start over on the same session and role. */
  retry(): void {
    const { sessionId, requestedRole } = this.#state;
    if (sessionId !== null && requestedRole !== null) this.start(sessionId, requestedRole);
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

  sendResize(cols: number, rows: number): boolean {
    if (!canSendInput(this.#state) || !this.#socket) return false;
    const c = Math.min(Math.max(Math.floor(cols), 1), 1000);
    const r = Math.min(Math.max(Math.floor(rows), 1), 1000);
    this.#socket.send(JSON.stringify({ type: 'resize', cols: c, rows: r }));
    return true;
  }

  acquire(): boolean {
    return this.#control('acquire', canAcquire(this.#state));
  }

  release(): boolean {
    return this.#control('release', canRelease(this.#state));
  }

  #control(action: 'acquire' | 'release', allowed: boolean): boolean {
    if (!allowed || !this.#socket) return false;
    this.#socket.send(JSON.stringify({ type: 'control', action }));
    return true;
  }

  #teardown(): void {
    this.#generation++; // late events of the old socket / ticket request are ignored
    if (this.#timer !== null) this.#deps.clearTimer(this.#timer);
    this.#timer = null;
    const sock = this.#socket;
    this.#socket = null;
    sock?.close(1000, 'detached');
  }

  #dispatch(event: AttachEvent): void {
    const prev = this.#state;
    this.#state = reduce(prev, event);
    if (this.#state === prev) return;
    this.#cb.onState(this.#state, prev);
    if (this.#state.you && !prev.you) {
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
      await this.#deps.requestTicket(sessionId, role);
    } catch (err) {
      if (gen !== this.#generation) return;
      const status = err instanceof ApiError ? err.status : null;
      const message = err instanceof Error ? err.message : String(err);
      this.#dispatch({ type: 'ticket-failed', status, message });
      this.#scheduleRetry();
      return;
    }
    if (gen !== this.#generation) return;
    let settle: () => void = () => {};
    const settled = new Promise<void>((resolve) => (settle = resolve));
    this.#socket = this.#deps.openSocket(sessionId, {
      onOpen: () => settle(),
      onText: (data) => {
        if (gen !== this.#generation) return;
        if (isHello(data)) this.#cb.onReset();
        this.#dispatch({ type: 'message', data });
      },
      onBinary: (bytes) => {
        if (gen === this.#generation) this.#cb.onOutput(bytes);
      },
      onClose: (code, reason) => {
        settle();
        if (gen !== this.#generation) return;
        this.#socket = null;
        this.#dispatch({ type: 'close', code, reason });
        this.#scheduleRetry();
      },
    });
    if (!waitForHandshake) return;
    // The handshake consumes the cookie; hold the lock until it has (or a timeout passes).
    const timer = this.#deps.setTimer(settle, this.#deps.handshakeWaitMs ?? 10_000);
    await settled;
    this.#deps.clearTimer(timer);
  }

  #scheduleRetry(): void {
    if (!this.#state.reconnect) return;
    const attempt = this.#state.attempt + 1;
    const delay = delayMs(attempt, this.#deps.backoff ?? DEFAULT_BACKOFF, this.#deps.random ?? Math.random);
    if (delay === null) {
      this.#dispatch({ type: 'give-up' });
      return;
    }
    this.#dispatch({ type: 'retry-scheduled', attempt, at: this.#deps.now() + delay });
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
