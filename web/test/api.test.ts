// Unit tests for the fetch wrappers: the token goes only into the Authorization header,
// ticket requests ask for cookie delivery, and error bodies become ApiError.

import { describe, expect, it } from 'vitest';

import { ApiClient, ApiError, attachPath, parseRecordingList, parseSessionList, wsURL } from '../src/api';

type Call = { url: string; init: RequestInit | undefined };

function fakeFetch(status: number, body: unknown): { calls: Call[]; fetch: (u: string, i?: RequestInit) => Promise<Response> } {
  const calls: Call[] = [];
  return {
    calls,
    fetch: (url, init) => {
      calls.push({ url, init });
      return Promise.resolve(new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } }));
    },
  };
}

const SECRET = 'tok-Secret-123';

describe('ApiClient', () => {
  it('sends the token only as a bearer header, never in the URL', async () => {
    const f = fakeFetch(200, [{ id: 'a' }]);
    await new ApiClient(SECRET, f.fetch).listSessions();
    const call = f.calls[0];
    expect(call?.url).toBe('/api/v1/sessions');
    expect(call?.url).not.toContain(SECRET);
    expect((call?.init?.headers as Record<string, string>).Authorization).toBe(`Bearer ${SECRET}`);
  });

  it('requests cookie-delivered tickets for the role', async () => {
    const f = fakeFetch(201, {});
    await new ApiClient(SECRET, f.fetch).requestCookieTicket('s/1', 'observer');
    expect(f.calls[0]?.url).toBe('/api/v1/sessions/s%2F1/attach-tickets');
    expect(f.calls[0]?.init?.method).toBe('POST');
    expect(JSON.parse(String(f.calls[0]?.init?.body))).toEqual({ role: 'observer', delivery: 'cookie' });
    expect(f.calls[0]?.init?.credentials).toBe('same-origin');
  });

  it('creates a session with an empty body', async () => {
    const f = fakeFetch(201, { id: 'new1', name: null });
    const s = await new ApiClient(SECRET, f.fetch).createSession();
    expect(s.id).toBe('new1');
    expect(f.calls[0]?.init?.body).toBe('{}');
  });

  it('turns error bodies into ApiError with status and code', async () => {
    const f = fakeFetch(404, { error: 'not_found', message: 'no such session' });
    const err = await new ApiClient(SECRET, f.fetch).requestCookieTicket('x', 'driver').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 404, code: 'not_found', message: 'no such session' });
  });
});

describe('helpers', () => {
  it('parses bare arrays and wrapped lists, dropping entries without an id', () => {
    expect(parseSessionList([{ id: 'a' }, { nope: 1 }]).map((s) => s.id)).toEqual(['a']);
    expect(parseSessionList({ sessions: [{ session_id: 'b', name: 'n' }] })).toMatchObject([{ id: 'b', name: 'n' }]);
    expect(parseSessionList('junk')).toEqual([]);
  });

  it('builds same-origin ws URLs without a query string', () => {
    expect(wsURL(attachPath('abc'), { protocol: 'http:', host: '127.0.0.1:8080' })).toBe(
      'ws://127.0.0.1:8080/api/v1/sessions/abc/attach',
    );
    expect(wsURL('/x', { protocol: 'https:', host: 'app.example.com' })).toBe('wss://app.example.com/x');
  });
});

describe('recordings', () => {
  it('parses the recordings list and keeps only well-formed entries', () => {
    expect(
      parseRecordingList([
        { file: 'a.cast', started_at: '2026-01-01T00:00:00.000Z', bytes: 10, verified: true },
        { file: 'b.cast', bytes: 'x' },
        { nofile: true },
        'junk',
      ]),
    ).toEqual([
      { file: 'a.cast', startedAt: '2026-01-01T00:00:00.000Z', bytes: 10, verified: true },
      { file: 'b.cast', startedAt: null, bytes: 0, verified: false },
    ]);
    expect(parseRecordingList({ recordings: [] })).toEqual([]);
  });

  it('fetches a recording with the token in the header, never in the URL', async () => {
    const calls: Call[] = [];
    const api = new ApiClient('secret-token', async (url, init) => {
      calls.push({ url, init });
      return new Response('{"version":2}', { status: 200 });
    });
    const blob = await api.fetchRecording('s-1', '20260101T000000.000Z-0a1b2c3d.cast');
    expect(await blob.text()).toBe('{"version":2}');
    expect(calls[0]!.url).toBe('/api/v1/sessions/s-1/recordings/20260101T000000.000Z-0a1b2c3d.cast');
    expect(calls[0]!.url).not.toContain('secret-token');
    expect((calls[0]!.init!.headers as Record<string, string>).Authorization).toBe('Bearer secret-token');
  });
});
