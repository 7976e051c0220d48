// Thin fetch wrappers for the attachd HTTP API (SPEC §3). The API token is passed in by the
// caller and only ever sent in the Authorization header, never in a URL or browser storage.

import { isObject } from './json';
import type { Role } from './protocol';
import { parseRetryAfter } from './retry-after';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/**
 * `error` codes of HTTP refusals (SPEC §2–§4, §9). The server maps them in one place
 * (`src/error.rs`), whose test checks this list against it name for name.
 */
export const API_ERROR = {
  UNAUTHORIZED: 'unauthorized',
  TICKET_REPLAYED: 'ticket_replayed',
  FORBIDDEN: 'forbidden',
  NOT_FOUND: 'not_found',
  INVALID_REQUEST: 'invalid_request',
  COMMAND_NOT_ALLOWED: 'command_not_allowed',
  PAYLOAD_TOO_LARGE: 'payload_too_large',
  REQUEST_TIMEOUT: 'request_timeout',
  TOKEN_IN_URL: 'token_in_url',
  ORIGIN_NOT_ALLOWED: 'origin_not_allowed',
  RATE_LIMITED: 'rate_limited',
  TOO_MANY_CONNECTIONS: 'too_many_connections',
  SESSION_FULL: 'session_full',
  AUDIT_UNAVAILABLE: 'audit_unavailable',
  RECORDING_UNAVAILABLE: 'recording_unavailable',
  REDIS_UNAVAILABLE: 'redis_unavailable',
  JWKS_UNAVAILABLE: 'jwks_unavailable',
  UNSUPPORTED_PROTOCOL: 'unsupported_protocol',
  UPGRADE_REQUIRED: 'upgrade_required',
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  BACKEND_UNAVAILABLE: 'backend_unavailable',
  SHUTTING_DOWN: 'shutting_down',
  AT_CAPACITY: 'at_capacity',
  INTERNAL: 'internal',
} as const;

/** An HTTP error answer: status plus the `{"error", "message"}` body of SPEC §2. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The answer's `Retry-After`, in ms, when it had one (429, 503). */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface SessionSummary {
  readonly id: string;
  readonly name: string | null;
  readonly command: readonly string[] | null;
  readonly createdAt: string | null;
  readonly state: string | null;
}


/** Accepts the session shapes a server may reasonably send; the spec fixes only the paths. */
export function normalizeSession(v: unknown): SessionSummary | null {
  if (!isObject(v)) return null;
  const id = typeof v.id === 'string' ? v.id : typeof v.session_id === 'string' ? v.session_id : null;
  if (!id) return null;
  const command = Array.isArray(v.command) && v.command.every((c) => typeof c === 'string') ? (v.command as string[]) : null;
  return {
    id,
    name: typeof v.name === 'string' ? v.name : null,
    command,
    createdAt: typeof v.created_at === 'string' ? v.created_at : null,
    state: typeof v.state === 'string' ? v.state : typeof v.status === 'string' ? v.status : null,
  };
}

/** A list answer is either a bare array or an object with a `sessions` (or `items`) array. */
export function parseSessionList(body: unknown): SessionSummary[] {
  const list = Array.isArray(body)
    ? body
    : isObject(body) && Array.isArray(body.sessions)
      ? body.sessions
      : isObject(body) && Array.isArray(body.items)
        ? body.items
        : [];
  return list.map(normalizeSession).filter((s): s is SessionSummary => s !== null);
}

/** One recording file of a session (SPEC §9). */
export interface RecordingSummary {
  readonly file: string;
  readonly startedAt: string | null;
  readonly bytes: number;
  readonly verified: boolean;
}

export function parseRecordingList(body: unknown): RecordingSummary[] {
  if (!Array.isArray(body)) return [];
  return body
    .filter(isObject)
    .filter((r) => typeof r.file === 'string')
    .map((r) => ({
      file: r.file as string,
      startedAt: typeof r.started_at === 'string' ? r.started_at : null,
      bytes: typeof r.bytes === 'number' ? r.bytes : 0,
      verified: r.verified === true,
    }));
}

export function sessionPath(id: string): string {
  return `/api/v1/sessions/${encodeURIComponent(id)}`;
}

export function attachPath(id: string): string {
  return `${sessionPath(id)}/attach`;
}

/** ws(s):// URL of a same-origin path. No query string is ever added (SPEC §4 `token_in_url`). */
export function wsURL(path: string, loc: Pick<Location, 'protocol' | 'host'> = window.location): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}${path}`;
}

async function errorFrom(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body: unknown = await res.json();
    if (isObject(body)) {
      if (typeof body.error === 'string') code = body.error;
      if (typeof body.message === 'string') message = body.message;
    }
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(res.status, code, message, parseRetryAfter(res.headers.get('Retry-After'), Date.now()));
}

export class ApiClient {
  readonly #token: string;
  readonly #fetch: FetchLike;
  readonly #base: string;

  constructor(token: string, fetchImpl: FetchLike = (input, init) => fetch(input, init), base = '') {
    this.#token = token;
    this.#fetch = fetchImpl;
    this.#base = base;
  }

  async #request(method: string, path: string, body?: unknown, accept = 'application/json', signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.#token}`, Accept: accept };
    const init: RequestInit = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error', signal: signal ?? null };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await this.#fetch(`${this.#base}${path}`, init);
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  async listSessions(): Promise<SessionSummary[]> {
    const res = await this.#request('GET', '/api/v1/sessions');
    return parseSessionList(await res.json());
  }

  async createSession(): Promise<SessionSummary> {
    const res = await this.#request('POST', '/api/v1/sessions', {});
    const body: unknown = await res.json();
    const s = normalizeSession(body) ?? (isObject(body) ? normalizeSession(body.session) : null);
    if (!s) throw new ApiError(res.status, 'bad_response', 'The server did not return a session id.');
    return s;
  }

  async listRecordings(sessionId: string): Promise<RecordingSummary[]> {
    const res = await this.#request('GET', `${sessionPath(sessionId)}/recordings`);
    return parseRecordingList(await res.json());
  }

  /** One recording's asciicast text, fetched with the token in the header (never in a URL). */
  async fetchRecording(sessionId: string, file: string): Promise<Blob> {
    const res = await this.#request('GET', `${sessionPath(sessionId)}/recordings/${encodeURIComponent(file)}`);
    return res.blob();
  }

  /**
   * POST an attach ticket with cookie delivery: the server sets an HttpOnly cookie; no secret in
   * the body. `resumeFrom` (SPEC §8) is the output offset this page has rendered, when resuming.
   */
  async requestCookieTicket(sessionId: string, role: Role, resumeFrom: number | null = null): Promise<void> {
    const body: Record<string, unknown> = { role, delivery: 'cookie' };
    if (resumeFrom !== null) body.resume_from = resumeFrom;
    await this.#request('POST', `${sessionPath(sessionId)}/attach-tickets`, body);
  }

  /** DELETE the session's control (scope `attach:moderate`): the holder loses the seat. */
  async revokeControl(sessionId: string): Promise<void> {
    await this.#request('DELETE', `${sessionPath(sessionId)}/control`);
  }

  /**
   * The dashboard's live stream (server-sent events with thumbnails), read with fetch so the
   * token travels in the Authorization header: EventSource cannot set headers, and no token
   * ever goes into a URL.
   */
  async dashboardStream(signal: AbortSignal): Promise<ReadableStreamDefaultReader<Uint8Array>> {
    const res = await this.#request('GET', '/api/v1/dashboard/events?thumbnails=true', undefined, 'text/event-stream', signal);
    if (!res.body) throw new ApiError(res.status, 'bad_response', 'The server sent no event stream.');
    return res.body.getReader();
  }
}
