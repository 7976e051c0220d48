// attach.v1 client state machine: a pure reducer (state + event -> state) over the
// SPEC §5 text frames and WebSocket close codes, plus the close-code -> message/reconnect map.

export type Role = 'driver' | 'observer';

/** idle: not attached; closed: the server ended it for good; failed: gave up or was refused. */
export type Phase = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed' | 'failed';

export interface Holder {
  readonly connectionId: string;
  /** Unknown until a `control` frame names it (hello carries only the connection id). */
  readonly subject: string | null;
}

export interface Participants {
  readonly drivers: number;
  readonly observers: number;
}

export interface ServerError {
  readonly code: string;
  readonly message: string;
}

export interface AttachState {
  readonly phase: Phase;
  readonly sessionId: string | null;
  readonly requestedRole: Role | null;
  /** Role confirmed by the server's hello. */
  readonly role: Role | null;
  readonly connectionId: string | null;
  readonly holder: Holder | null;
  /** This connection holds control. */
  readonly you: boolean;
  readonly participants: Participants | null;
  /** Unix ms at which the session is closed for idleness, if known. */
  readonly idleDeadline: number | null;
  readonly maxMessageBytes: number | null;
  /** Consecutive failed attempts since the last hello (0 while connected). */
  readonly attempt: number;
  /** Unix ms of the next automatic reconnect attempt, while one is scheduled. */
  readonly nextRetryAt: number | null;
  readonly closeCode: number | null;
  /** Human explanation of the last close or refusal, for #close-reason. */
  readonly closeMessage: string | null;
  readonly exitCode: number | null;
  readonly shuttingDown: boolean;
  /** Set on a close or a failed ticket request: the controller should schedule a retry. */
  readonly reconnect: boolean;
  readonly lastError: ServerError | null;
  /** Short transient message (control changes, error frames) for #notice. */
  readonly notice: string | null;
}

export type AttachEvent =
  | { readonly type: 'attach'; readonly sessionId: string; readonly role: Role }
  | { readonly type: 'connecting' }
  | { readonly type: 'ticket-failed'; readonly status: number | null; readonly message: string }
  | { readonly type: 'message'; readonly data: string }
  | { readonly type: 'close'; readonly code: number; readonly reason: string }
  | { readonly type: 'retry-scheduled'; readonly attempt: number; readonly at: number }
  | { readonly type: 'give-up' }
  | { readonly type: 'detach' };

export const initialState: AttachState = {
  phase: 'idle',
  sessionId: null,
  requestedRole: null,
  role: null,
  connectionId: null,
  holder: null,
  you: false,
  participants: null,
  idleDeadline: null,
  maxMessageBytes: null,
  attempt: 0,
  nextRetryAt: null,
  closeCode: null,
  closeMessage: null,
  exitCode: null,
  shuttingDown: false,
  reconnect: false,
  lastError: null,
  notice: null,
};

export interface CloseInfo {
  readonly message: string;
  readonly reconnect: boolean;
}

/** What a close code means to a person, and whether reconnecting can help (SPEC §5). */
export function describeClose(code: number, exitCode: number | null = null, reason = ''): CloseInfo {
  switch (code) {
    case 1000:
      return {
        message: exitCode === null ? 'The process exited.' : `The process exited with code ${exitCode}.`,
        reconnect: false,
      };
    case 1001:
      return { message: 'The server is shutting down.', reconnect: true };
    case 1002:
      return { message: 'Protocol error: the server rejected a malformed frame.', reconnect: true };
    case 1006:
      return { message: 'The connection was lost or refused.', reconnect: true };
    case 1007:
      return { message: 'The server rejected a text frame that was not valid UTF-8.', reconnect: true };
    case 1008:
      return {
        message: 'Closed for a policy violation (too many invalid or forbidden messages, or input sent too fast).',
        reconnect: false,
      };
    case 1009:
      return { message: 'A message was too big for the server.', reconnect: true };
    case 1011:
      return { message: 'The server hit an internal error.', reconnect: true };
    case 4000:
      // The session itself timed out; reconnecting would not bring it back (Retry stays available).
      return { message: 'The session was closed because it was idle for too long.', reconnect: false };
    case 4001:
      return { message: 'Heartbeat timeout: the server heard nothing from this browser in time.', reconnect: true };
    case 4002:
      return { message: 'The connection reached its maximum lifetime.', reconnect: true };
    case 4003:
      return { message: 'This connection was too slow to keep up with the output.', reconnect: true };
    case 4005:
      return { message: 'Access was revoked by a moderator, or the session was deleted.', reconnect: false };
    default:
      return { message: `The connection closed (code ${code}${reason ? `: ${reason}` : ''}).`, reconnect: true };
  }
}

/** Ticket request failures that a retry cannot fix: bad token, missing scope, unknown session, bad request. */
export function isFatalTicketStatus(status: number | null): boolean {
  if (status === null) return false; // network error: the server may be restarting
  return status >= 400 && status < 500 && status !== 408 && status !== 425 && status !== 429;
}

export function describeTicketFailure(status: number | null, message: string): string {
  switch (status) {
    case null:
      return `Could not reach the server (${message}).`;
    case 401:
      return 'The API token was rejected (401): sign in again.';
    case 403:
      return 'The API token lacks the scope for this role (403).';
    case 404:
      return 'The session no longer exists (404).';
    default:
      return `Could not get an attach ticket (${status}${message ? `: ${message}` : ''}).`;
  }
}

/**
 * Parse an idle deadline: an RFC 3339 string or a unix-ms number. A number too small to be
 * unix ms of this era (< 1e11, i.e. before 1973) is taken as unix seconds. Returns unix ms or null.
 */
export function parseDeadline(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) {
    return value < 1e11 ? value * 1000 : value;
  }
  if (typeof value === 'string' && value.trim() !== '') {
    if (/^\d+$/.test(value.trim())) return parseDeadline(Number(value.trim()));
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0;
}

function asRole(v: unknown): Role | null {
  return v === 'driver' || v === 'observer' ? v : null;
}

/** Parse a text frame into a JSON object with a string `type`, or null. */
export function parseFrame(data: string): (Json & { type: string }) | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObject(v) || typeof v.type !== 'string') return null;
  return v as Json & { type: string };
}

/** Holder as sent in hello (a connection id) or in control frames ({connection_id, subject}). */
function parseHolder(v: unknown): Holder | null {
  if (typeof v === 'string' && v !== '') return { connectionId: v, subject: null };
  if (isObject(v)) {
    const id = str(v.connection_id);
    if (id) return { connectionId: id, subject: str(v.subject) };
  }
  return null;
}

const controlReasons: Record<string, string> = {
  acquired: 'acquired',
  released: 'released',
  expired: 'expired after driver inactivity',
  revoked: 'revoked by a moderator',
  disconnected: 'the driver disconnected',
};

function controlNotice(holder: Holder | null, you: boolean, lost: boolean, reason: string | null): string {
  const why = reason ? controlReasons[reason] ?? reason : null;
  if (lost) return `You no longer hold control${why ? ` (${why})` : ''}.`;
  if (holder) return you ? 'You hold control.' : `${holder.subject ?? 'Someone'} holds control.`;
  return `Nobody holds control${why ? ` (${why})` : ''}.`;
}

function onText(state: AttachState, data: string): AttachState {
  const f = parseFrame(data);
  if (!f) return state;
  switch (f.type) {
    case 'hello': {
      const control = isObject(f.control) ? f.control : {};
      const connectionId = str(f.connection_id);
      const you = control.you === true;
      let holder = parseHolder(control.holder);
      if (!holder && you && connectionId) holder = { connectionId, subject: null };
      const limits = isObject(f.limits) ? f.limits : {};
      return {
        ...state,
        phase: 'connected',
        role: asRole(f.role) ?? state.requestedRole,
        connectionId,
        holder,
        you,
        idleDeadline: parseDeadline(f.idle_deadline),
        maxMessageBytes: typeof limits.max_message_bytes === 'number' ? limits.max_message_bytes : null,
        attempt: 0,
        nextRetryAt: null,
        closeCode: null,
        closeMessage: null,
        exitCode: null,
        shuttingDown: false,
        reconnect: false,
        lastError: null,
        notice: null,
      };
    }
    case 'control': {
      const holder = parseHolder(f.holder);
      const you = holder !== null && holder.connectionId === state.connectionId;
      const notice = controlNotice(holder, you, state.you && !you, str(f.reason));
      return { ...state, holder, you, notice };
    }
    case 'participants':
      return { ...state, participants: { drivers: count(f.drivers), observers: count(f.observers) } };
    case 'idle':
      return { ...state, idleDeadline: parseDeadline(f.deadline) ?? state.idleDeadline };
    case 'error': {
      const err = { code: str(f.code) ?? 'error', message: str(f.message) ?? '' };
      return { ...state, lastError: err, notice: `Server: ${err.code}${err.message ? ` – ${err.message}` : ''}` };
    }
    case 'exit':
      return { ...state, exitCode: typeof f.code === 'number' ? f.code : null };
    case 'shutdown':
      return { ...state, shuttingDown: true, notice: 'The server is shutting down.' };
    default:
      return state; // unknown frame types are ignored (forward compatible)
  }
}

/** The reducer. Pure: no clock reads, no I/O. */
export function reduce(state: AttachState, event: AttachEvent): AttachState {
  switch (event.type) {
    case 'attach':
      return { ...initialState, phase: 'connecting', sessionId: event.sessionId, requestedRole: event.role };
    case 'detach':
      return initialState;
    case 'connecting':
      if (state.phase === 'idle') return state;
      return {
        ...state,
        phase: state.attempt > 0 ? 'reconnecting' : 'connecting',
        nextRetryAt: null,
        reconnect: false,
      };
    case 'message':
      if (state.phase === 'idle') return state;
      return onText(state, event.data);
    case 'close': {
      if (state.phase === 'idle') return state;
      const info = describeClose(event.code, state.exitCode, event.reason);
      const message =
        event.code === 1006 && state.shuttingDown ? describeClose(1001).message : info.message;
      return {
        ...state,
        phase: info.reconnect ? 'reconnecting' : 'closed',
        holder: null,
        you: false,
        participants: null,
        closeCode: event.code,
        closeMessage: message,
        reconnect: info.reconnect,
      };
    }
    case 'ticket-failed': {
      if (state.phase === 'idle') return state;
      const fatal = isFatalTicketStatus(event.status);
      return {
        ...state,
        phase: fatal ? 'failed' : 'reconnecting',
        holder: null,
        you: false,
        closeCode: null,
        closeMessage: describeTicketFailure(event.status, event.message),
        reconnect: !fatal,
      };
    }
    case 'retry-scheduled':
      if (state.phase === 'idle') return state;
      return { ...state, phase: 'reconnecting', attempt: event.attempt, nextRetryAt: event.at, reconnect: false };
    case 'give-up':
      if (state.phase === 'idle') return state;
      return {
        ...state,
        phase: 'failed',
        nextRetryAt: null,
        reconnect: false,
        closeMessage: `${state.closeMessage ? `${state.closeMessage} ` : ''}Gave up after ${state.attempt} reconnect attempts.`,
      };
  }
}

/** Keystrokes and resizes may be sent only by the connection that holds control. */
export function canSendInput(state: AttachState): boolean {
  return state.phase === 'connected' && state.role === 'driver' && state.you;
}

/** Control can be acquired only when it is free (otherwise the server answers control_denied). */
export function canAcquire(state: AttachState): boolean {
  return state.phase === 'connected' && state.role === 'driver' && !state.you && state.holder === null;
}

export function canRelease(state: AttachState): boolean {
  return state.phase === 'connected' && state.role === 'driver' && state.you;
}

/** Whether the controller should reset the terminal: a hello starts a fresh replay. */
export function isHello(data: string): boolean {
  return parseFrame(data)?.type === 'hello';
}
