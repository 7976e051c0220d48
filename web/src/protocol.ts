// attach.v1 client state machine: a pure reducer (state + event -> state) over the
// SPEC §5/§8 text frames and WebSocket close codes, plus the close-code -> message/reconnect map.
// Over 500 lines: one reducer over every frame and close code, whose cases follow SPEC §5's list.

import { count, isObject, type Json, str } from './json';
import { type Moderation, moderationNotice, parseModeration } from './moderation';
import { parseSize, parseSnapshot, snapshotNotice, type TermSize } from './snapshot';

export type { TermSize } from './snapshot';

export type Role = 'driver' | 'observer';

/** WebSocket close codes (SPEC §4–§5); names as in the server's `protocol::close`. */
export const CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SESSION_IDLE: 4000,
  HEARTBEAT_TIMEOUT: 4001,
  MAX_LIFETIME: 4002,
  SLOW_CONSUMER: 4003,
  REVOKED: 4005,
} as const;

/** `error` frame codes (SPEC §5); the connection stays open. */
export const FRAME_ERROR = {
  NOT_DRIVER: 'not_driver',
  INVALID_MESSAGE: 'invalid_message',
  RATE_LIMITED: 'rate_limited',
  CONTROL_DENIED: 'control_denied',
  /** A moderated session without a moderator: what is typed past the hold is refused. */
  MODERATION_REQUIRED: 'moderation_required',
} as const;

/** idle: not attached; closed: the server ended it for good; failed: gave up or was refused. */
export type Phase = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed' | 'failed';

export interface Holder {
  readonly connectionId: string;
  /** The holder's subject (servers before names carried only the connection id in hello). */
  readonly subject: string | null;
  /** The holder's display name (the token's `name` or `preferred_username`), when it has one. */
  readonly name?: string | null;
}

/** What to call a participant: its display name, else its subject. */
export function displayName(who: { readonly subject: string | null; readonly name?: string | null } | null): string | null {
  return who?.name ?? who?.subject ?? null;
}

/** A driver asking this page's connection (the holder) for control. */
export interface Requester {
  readonly connectionId: string;
  readonly subject: string | null;
  readonly name: string | null;
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
  /** This connection's own subject and display name (hello). */
  readonly subject: string | null;
  readonly name: string | null;
  readonly holder: Holder | null;
  /** This connection holds control. */
  readonly you: boolean;
  /** Drivers waiting for this holder's answer (`control_request`), oldest first. */
  readonly requests: readonly Requester[];
  /** This connection asked the holder for control and waits for the answer. */
  readonly asked: boolean;
  readonly participants: Participants | null;
  /** A moderated session's state (null for a session that is not moderated). */
  readonly moderation: Moderation | null;
  /** Unix ms at which the session is closed for idleness, if known. */
  readonly idleDeadline: number | null;
  readonly maxMessageBytes: number | null;
  /** The session's PTY size (hello / size frames, SPEC §8); null from servers that do not send it. */
  readonly size: TermSize | null;
  /** The last hello resumed the output stream where this page left it (no snapshot follows). */
  readonly resumed: boolean;
  /** HTTP status of the last refused ticket request, while it is the reason for the state. */
  readonly refusedStatus: number | null;
  /** Unix ms until which the server refuses attempts (429 + Retry-After). */
  readonly rateLimitedUntil: number | null;
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
  | {
      readonly type: 'ticket-failed';
      readonly status: number | null;
      readonly message: string;
      /** Unix ms until which a 429's Retry-After closes the window, if it said so. */
      readonly retryAt?: number | null;
    }
  | { readonly type: 'message'; readonly data: string }
  | {
      readonly type: 'close';
      readonly code: number;
      readonly reason: string;
      /** The socket closed before it ever opened: the handshake was refused or never answered. */
      readonly beforeOpen?: boolean;
    }
  | { readonly type: 'retry-scheduled'; readonly attempt: number; readonly at: number }
  | { readonly type: 'give-up' }
  | { readonly type: 'detach' }
  /** A key was pressed while this page may not type: say why. */
  | { readonly type: 'typed-blocked' };

export const initialState: AttachState = {
  phase: 'idle',
  sessionId: null,
  requestedRole: null,
  role: null,
  connectionId: null,
  subject: null,
  name: null,
  holder: null,
  you: false,
  requests: [],
  asked: false,
  participants: null,
  moderation: null,
  idleDeadline: null,
  maxMessageBytes: null,
  size: null,
  resumed: false,
  refusedStatus: null,
  rateLimitedUntil: null,
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
    case CLOSE.NORMAL:
      return {
        message: exitCode === null ? 'The process exited.' : `The process exited with code ${exitCode}.`,
        reconnect: false,
      };
    case CLOSE.GOING_AWAY:
      return { message: 'The server is shutting down.', reconnect: true };
    case CLOSE.PROTOCOL_ERROR:
      return { message: 'Protocol error: the server rejected a malformed frame.', reconnect: true };
    case CLOSE.ABNORMAL:
      return { message: 'The connection was lost or refused.', reconnect: true };
    case CLOSE.INVALID_PAYLOAD:
      return { message: 'The server rejected a text frame that was not valid UTF-8.', reconnect: true };
    case CLOSE.POLICY_VIOLATION:
      return {
        message: 'Closed for a policy violation (too many invalid or forbidden messages, or input sent too fast).',
        reconnect: false,
      };
    case CLOSE.MESSAGE_TOO_BIG:
      return { message: 'A message was too big for the server.', reconnect: true };
    case CLOSE.INTERNAL_ERROR:
      return { message: 'The server hit an internal error.', reconnect: true };
    case CLOSE.SESSION_IDLE:
      // The session itself timed out; reconnecting would not bring it back ("New session" instead).
      return { message: 'The session was closed because it was idle for too long.', reconnect: false };
    case CLOSE.HEARTBEAT_TIMEOUT:
      return { message: 'Heartbeat timeout: the server heard nothing from this browser in time.', reconnect: true };
    case CLOSE.MAX_LIFETIME:
      return { message: 'The connection reached its maximum lifetime.', reconnect: true };
    case CLOSE.SLOW_CONSUMER:
      return { message: 'This connection was too slow to keep up with the output.', reconnect: true };
    case CLOSE.REVOKED:
      return { message: 'Access was revoked by a moderator, or the session was deleted.', reconnect: false };
    default:
      return { message: `The connection closed (code ${code}${reason ? `: ${reason}` : ''}).`, reconnect: true };
  }
}

/**
 * A browser does not show why a WebSocket handshake failed; these are the server's reasons
 * (SPEC §4) that a valid ticket can still meet.
 */
export const HANDSHAKE_REFUSED =
  'The server refused the connection before it opened (too many attempts from this address, too many connections, a full session), or could not be reached.';

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
    case 429:
      return 'The server refused: too many attempts (429).';
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

/** Holder as sent in control frames ({connection_id, subject, name?}). */
function parseHolder(v: unknown): Holder | null {
  if (isObject(v)) {
    const id = str(v.connection_id);
    if (id) return { connectionId: id, subject: str(v.subject), name: str(v.name) };
  }
  return null;
}

/** Holder as sent in hello: `control.holder` is a connection id, `subject` and `name` beside it. */
function parseHelloHolder(control: Json): Holder | null {
  const id = str(control.holder);
  return id ? { connectionId: id, subject: str(control.subject), name: str(control.name) } : null;
}

const controlReasons: Record<string, string> = {
  acquired: 'acquired',
  released: 'released',
  expired: 'expired after driver inactivity',
  revoked: 'revoked by a moderator',
  disconnected: 'the driver disconnected',
  granted: 'handed over on request',
};

function parseRequester(v: unknown): Requester | null {
  if (!isObject(v)) return null;
  const id = str(v.connection_id);
  return id ? { connectionId: id, subject: str(v.subject), name: str(v.name) } : null;
}

function requestEndedNotice(outcome: string | null, holder: Holder | null): string {
  const who = displayName(holder) ?? 'The holder';
  switch (outcome) {
    case 'denied':
      return `${who} denied your request for control.`;
    case 'expired':
      return 'Your request for control expired unanswered.';
    default:
      return 'Your request for control ended.';
  }
}

function controlNotice(holder: Holder | null, you: boolean, lost: boolean, reason: string | null): string {
  const why = reason ? controlReasons[reason] ?? reason : null;
  const who = displayName(holder) ?? 'someone';
  if (lost && holder) return `You lost control to ${who}.`;
  if (lost) return `You no longer hold control${why ? ` (${why})` : ''}.`;
  if (holder) return you ? 'You hold control.' : `${who} holds control.`;
  return `Nobody holds control${why ? ` (${why})` : ''}.`;
}

/** Why this page's keystrokes go nowhere (shown when someone types without control); null when they do. */
export function typingOffText(state: AttachState): string | null {
  if (state.phase !== 'connected' || canSendInput(state)) return null;
  if (state.role === 'observer') return OBSERVING;
  const who = displayName(state.holder);
  return who ? `${who} holds control: request control to type.` : 'Nobody holds control: take control to type.';
}

export const OBSERVING = 'You are observing: typing is off.';

function onText(state: AttachState, data: string): AttachState {
  const f = parseFrame(data);
  if (!f) return state;
  switch (f.type) {
    case 'hello': {
      const control = isObject(f.control) ? f.control : {};
      const connectionId = str(f.connection_id);
      const you = control.you === true;
      const subject = str(f.subject);
      const name = str(f.name);
      let holder = parseHelloHolder(control);
      if (!holder && you && connectionId) holder = { connectionId, subject, name };
      const limits = isObject(f.limits) ? f.limits : {};
      const role = asRole(f.role) ?? state.requestedRole;
      return {
        ...state,
        phase: 'connected',
        role,
        connectionId,
        subject,
        name,
        holder,
        you,
        requests: [],
        asked: false,
        moderation: null,
        idleDeadline: parseDeadline(f.idle_deadline),
        maxMessageBytes: typeof limits.max_message_bytes === 'number' ? limits.max_message_bytes : null,
        size: parseSize(f.size),
        resumed: f.resumed === true,
        refusedStatus: null,
        rateLimitedUntil: null,
        attempt: 0,
        nextRetryAt: null,
        closeCode: null,
        closeMessage: null,
        exitCode: null,
        shuttingDown: false,
        reconnect: false,
        lastError: null,
        notice: role === 'observer' ? OBSERVING : null,
      };
    }
    case 'control': {
      const holder = parseHolder(f.holder);
      const you = holder !== null && holder.connectionId === state.connectionId;
      const notice = controlNotice(holder, you, state.you && !you, str(f.reason));
      // Requests were addressed to the old holder: they end with the change.
      return { ...state, holder, you, notice, requests: [], asked: false };
    }
    case 'control_request': {
      const from = parseRequester(f.from);
      if (!from) return state;
      if (from.connectionId === state.connectionId) {
        const who = displayName(state.holder) ?? 'the holder';
        return { ...state, asked: true, notice: `Asked ${who} for control; waiting for an answer.` };
      }
      if (state.requests.some((r) => r.connectionId === from.connectionId)) return state;
      return { ...state, requests: [...state.requests, from], notice: `${displayName(from) ?? 'A driver'} asks for control.` };
    }
    case 'control_request_ended': {
      const from = parseRequester(f.from);
      if (!from) return state;
      if (from.connectionId === state.connectionId) {
        return { ...state, asked: false, notice: requestEndedNotice(str(f.outcome), state.holder) };
      }
      return { ...state, requests: state.requests.filter((r) => r.connectionId !== from.connectionId) };
    }
    case 'snapshot': {
      const snap = parseSnapshot(f);
      const notice = snapshotNotice(snap);
      return { ...state, size: snap.size ?? state.size, resumed: false, ...(notice ? { notice } : {}) };
    }
    case 'size':
      return { ...state, size: parseSize(f) ?? state.size };
    case 'participants':
      return { ...state, participants: { drivers: count(f.drivers), observers: count(f.observers) } };
    case 'moderation': {
      const moderation = parseModeration(f);
      if (!moderation) return state;
      const notice = moderationNotice(state.moderation, moderation);
      return { ...state, moderation, ...(notice ? { notice } : {}) };
    }
    case 'idle':
      return { ...state, idleDeadline: parseDeadline(f.deadline) ?? state.idleDeadline };
    case 'error': {
      const err = { code: str(f.code) ?? 'error', message: str(f.message) ?? '' };
      // This page sends keys and resizes only while it holds control, so a not_driver it gets
      // after losing control answers a frame that crossed the change: the notice that explains
      // the change stays.
      if (err.code === FRAME_ERROR.NOT_DRIVER && !canSendInput(state)) {
        return { ...state, lastError: err, notice: state.notice ?? typingOffText(state) };
      }
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
        rateLimitedUntil: null,
        reconnect: false,
      };
    case 'message':
      if (state.phase === 'idle') return state;
      return onText(state, event.data);
    case 'close': {
      if (state.phase === 'idle') return state;
      const info = describeClose(event.code, state.exitCode, event.reason);
      const message =
        event.code !== CLOSE.ABNORMAL
          ? info.message
          : state.shuttingDown
            ? describeClose(CLOSE.GOING_AWAY).message
            : event.beforeOpen
              ? HANDSHAKE_REFUSED
              : info.message;
      return {
        ...state,
        phase: info.reconnect ? 'reconnecting' : 'closed',
        holder: null,
        you: false,
        requests: [],
        asked: false,
        participants: null,
        moderation: null,
        closeCode: event.code,
        closeMessage: message,
        refusedStatus: null,
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
        requests: [],
        asked: false,
        closeCode: null,
        closeMessage: describeTicketFailure(event.status, event.message),
        refusedStatus: event.status,
        rateLimitedUntil: event.status === 429 ? event.retryAt ?? null : null,
        reconnect: !fatal,
      };
    }
    case 'retry-scheduled':
      if (state.phase === 'idle') return state;
      return { ...state, phase: 'reconnecting', attempt: event.attempt, nextRetryAt: event.at, reconnect: false };
    case 'typed-blocked': {
      const why = typingOffText(state);
      return why === null || why === state.notice ? state : { ...state, notice: why };
    }
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

/** Someone else holds control: a driver may ask for it (once at a time). */
export function canRequest(state: AttachState): boolean {
  return state.phase === 'connected' && state.role === 'driver' && !state.you && state.holder !== null && !state.asked;
}

export function canRelease(state: AttachState): boolean {
  return state.phase === 'connected' && state.role === 'driver' && state.you;
}

/**
 * Retrying cannot bring the session back: its process exited, it was closed for idleness, or
 * the server says it no longer exists. The page offers "New session" instead of Retry.
 */
export function sessionGone(state: AttachState): boolean {
  if (state.phase !== 'closed' && state.phase !== 'failed') return false;
  return state.closeCode === CLOSE.NORMAL || state.closeCode === CLOSE.SESSION_IDLE || state.refusedStatus === 404;
}

/** A 429's Retry-After window is still closed at `now`: a retry now would only be refused. */
export function rateLimited(state: AttachState, now: number): boolean {
  return state.rateLimitedUntil !== null && state.rateLimitedUntil > now;
}
