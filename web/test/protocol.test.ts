// Unit tests for the attach.v1 reducer: hello/control/participants/idle/error/exit/shutdown
// frames, close codes (message + reconnect decision) and ticket failures.

import { describe, expect, it } from 'vitest';

import {
  type AttachEvent,
  type AttachState,
  canAcquire,
  canRelease,
  canRequest,
  canSendInput,
  CLOSE,
  describeClose,
  initialState,
  isFatalTicketStatus,
  parseDeadline,
  rateLimited,
  reduce,
  sessionGone,
  typingOffText,
} from '../src/protocol';
import { formatBytes } from '../src/format';
import { parseSize } from '../src/snapshot';

const msg = (v: unknown): AttachEvent => ({ type: 'message', data: JSON.stringify(v) });
const run = (events: AttachEvent[], from: AttachState = initialState): AttachState => events.reduce(reduce, from);

const hello = (over: Record<string, unknown> = {}): AttachEvent =>
  msg({
    type: 'hello',
    session_id: 's1',
    connection_id: 'c1',
    role: 'driver',
    control: { holder: 'c1', you: true },
    idle_deadline: '2030-01-01T00:00:00Z',
    limits: { max_message_bytes: 1048576, ping_interval_ms: 15000 },
    ...over,
  });

const attached = (role: 'driver' | 'observer' = 'driver'): AttachState =>
  run([{ type: 'attach', sessionId: 's1', role }, { type: 'connecting' }]);

describe('hello', () => {
  it('connects and records role, connection, control and limits', () => {
    const s = run([hello()], attached());
    expect(s.phase).toBe('connected');
    expect(s.role).toBe('driver');
    expect(s.connectionId).toBe('c1');
    expect(s.you).toBe(true);
    expect(s.holder).toEqual({ connectionId: 'c1', subject: null, name: null });
    expect(s.idleDeadline).toBe(Date.UTC(2030, 0, 1));
    expect(s.maxMessageBytes).toBe(1048576);
    expect(canSendInput(s)).toBe(true);
    expect(canRelease(s)).toBe(true);
    expect(canAcquire(s)).toBe(false);
  });

  it('another holder: someone else has control', () => {
    const s = run([hello({ control: { holder: 'c9', you: false } })], attached());
    expect(s.you).toBe(false);
    expect(s.holder).toEqual({ connectionId: 'c9', subject: null, name: null });
    expect(canSendInput(s)).toBe(false);
    expect(canAcquire(s)).toBe(false); // taken: acquiring would only be denied
    const freed = reduce(s, msg({ type: 'control', holder: null, reason: 'released' }));
    expect(canAcquire(freed)).toBe(true);
  });

  it('names this connection and the holder', () => {
    const s = run(
      [hello({ subject: 'alice', name: 'Alice', control: { holder: 'c9', you: false, subject: 'bob' } })],
      attached(),
    );
    expect(s.subject).toBe('alice');
    expect(s.name).toBe('Alice');
    expect(s.holder).toEqual({ connectionId: 'c9', subject: 'bob', name: null });
    expect(typingOffText(s)).toBe('bob holds control: request control to type.');
    expect(reduce(s, { type: 'typed-blocked' }).notice).toBe('bob holds control: request control to type.');
  });

  it('observers can never send input or acquire', () => {
    const s = run([hello({ role: 'observer', control: { holder: null, you: false } })], attached('observer'));
    expect(s.notice).toBe('You are observing: typing is off.');
    expect(reduce({ ...s, notice: null }, { type: 'typed-blocked' }).notice).toBe('You are observing: typing is off.');
    expect(s.role).toBe('observer');
    expect(s.holder).toBeNull();
    expect(canSendInput(s)).toBe(false);
    expect(canAcquire(s)).toBe(false);
  });

  it('accepts a unix-ms idle deadline', () => {
    const s = run([hello({ idle_deadline: 1_900_000_000_000 })], attached());
    expect(s.idleDeadline).toBe(1_900_000_000_000);
  });

  it('resets the reconnect bookkeeping of a previous connection', () => {
    const before = run(
      [{ type: 'close', code: 4001, reason: '' }, { type: 'retry-scheduled', attempt: 3, at: 99 }, { type: 'connecting' }],
      run([hello()], attached()),
    );
    expect(before.phase).toBe('reconnecting');
    const s = reduce(before, hello({ connection_id: 'c2', control: { holder: 'c2', you: true } }));
    expect(s.phase).toBe('connected');
    expect(s.attempt).toBe(0);
    expect(s.closeMessage).toBeNull();
    expect(s.connectionId).toBe('c2');
  });
});

describe('control frames', () => {
  const base = run([hello({ control: { holder: null, you: false } })], attached());

  it('acquired by this connection: you', () => {
    const s = reduce(base, msg({ type: 'control', holder: { connection_id: 'c1', subject: 'alice' }, reason: 'acquired' }));
    expect(s.you).toBe(true);
    expect(s.holder?.subject).toBe('alice');
    expect(canSendInput(s)).toBe(true);
  });

  it('acquired by another connection: someone (subject)', () => {
    const s = reduce(base, msg({ type: 'control', holder: { connection_id: 'c7', subject: 'bob' }, reason: 'acquired' }));
    expect(s.you).toBe(false);
    expect(s.holder).toEqual({ connectionId: 'c7', subject: 'bob', name: null });
    expect(s.notice).toBe('bob holds control.');
  });

  it('a display name wins over the subject', () => {
    const s = reduce(base, msg({ type: 'control', holder: { connection_id: 'c7', subject: 'u-42', name: 'Bob' }, reason: 'acquired' }));
    expect(s.notice).toBe('Bob holds control.');
  });

  it('losing control to another connection names it', () => {
    const mine = reduce(base, msg({ type: 'control', holder: { connection_id: 'c1', subject: 'alice' }, reason: 'acquired' }));
    const s = reduce(mine, msg({ type: 'control', holder: { connection_id: 'c7', subject: 'bob' }, reason: 'granted' }));
    expect(s.you).toBe(false);
    expect(s.notice).toBe('You lost control to bob.');
  });

  it('released / expired: nobody, and a lost holder is told why', () => {
    const mine = reduce(base, msg({ type: 'control', holder: { connection_id: 'c1', subject: 'alice' }, reason: 'acquired' }));
    const s = reduce(mine, msg({ type: 'control', holder: null, reason: 'expired' }));
    expect(s.you).toBe(false);
    expect(s.holder).toBeNull();
    expect(canSendInput(s)).toBe(false);
    expect(s.notice).toContain('no longer hold control');
    expect(s.notice).toContain('inactivity');
  });
});

describe('requests for control', () => {
  const holding = run([hello({ subject: 'alice' })], attached());
  const watching = run([hello({ connection_id: 'c2', subject: 'bob', control: { holder: 'c1', you: false, subject: 'alice' } })], attached());
  const from = { connection_id: 'c2', subject: 'bob', name: 'Bob' };

  it('the holder gets a prompt per requester, once', () => {
    const s = reduce(holding, msg({ type: 'control_request', from, expires_at: '2030-01-01T00:00:00Z' }));
    expect(s.requests).toEqual([{ connectionId: 'c2', subject: 'bob', name: 'Bob' }]);
    expect(s.notice).toBe('Bob asks for control.');
    expect(reduce(s, msg({ type: 'control_request', from })).requests).toHaveLength(1);
    const ended = reduce(s, msg({ type: 'control_request_ended', from, outcome: 'expired' }));
    expect(ended.requests).toEqual([]);
  });

  it('a grant ends every prompt and names the new holder for the old one', () => {
    const s = reduce(holding, msg({ type: 'control_request', from }));
    const after = reduce(s, msg({ type: 'control', holder: from, reason: 'granted' }));
    expect(after.requests).toEqual([]);
    expect(after.you).toBe(false);
    expect(after.notice).toBe('You lost control to Bob.');
  });

  it('a not_driver answering a frame that crossed the grant keeps the notice of the change', () => {
    const after = run([msg({ type: 'control', holder: from, reason: 'granted' })], holding);
    const err = reduce(after, msg({ type: 'error', code: 'not_driver', message: 'resize is accepted only from the connection holding control' }));
    expect(err.notice).toBe('You lost control to Bob.');
    expect(err.lastError?.code).toBe('not_driver');
    // Other errors still show.
    expect(reduce(after, msg({ type: 'error', code: 'control_denied', message: 'x' })).notice).toContain('control_denied');
  });

  it('the requester waits, then hears the answer', () => {
    expect(canRequest(watching)).toBe(true);
    expect(canAcquire(watching)).toBe(false);
    const asked = reduce(watching, msg({ type: 'control_request', from }));
    expect(asked.asked).toBe(true);
    expect(asked.requests).toEqual([]);
    expect(asked.notice).toBe('Asked alice for control; waiting for an answer.');
    expect(canRequest(asked)).toBe(false);
    const denied = reduce(asked, msg({ type: 'control_request_ended', from, outcome: 'denied' }));
    expect(denied.asked).toBe(false);
    expect(denied.notice).toBe('alice denied your request for control.');
    const granted = reduce(asked, msg({ type: 'control', holder: from, reason: 'granted' }));
    expect(granted.you).toBe(true);
    expect(granted.asked).toBe(false);
  });
});

describe('other frames', () => {
  const base = run([hello()], attached());

  it('participants', () => {
    expect(reduce(base, msg({ type: 'participants', drivers: 2, observers: 3 })).participants).toEqual({
      drivers: 2,
      observers: 3,
    });
  });

  it('idle moves the deadline (string or number)', () => {
    expect(reduce(base, msg({ type: 'idle', deadline: '2031-06-01T12:00:00.500Z' })).idleDeadline).toBe(
      Date.UTC(2031, 5, 1, 12, 0, 0, 500),
    );
    expect(reduce(base, msg({ type: 'idle', deadline: 1_950_000_000_000 })).idleDeadline).toBe(1_950_000_000_000);
  });

  it('error frames keep the connection and show a notice', () => {
    const s = reduce(base, msg({ type: 'error', code: 'not_driver', message: 'you do not hold control' }));
    expect(s.phase).toBe('connected');
    expect(s.lastError).toEqual({ code: 'not_driver', message: 'you do not hold control' });
    expect(s.notice).toContain('not_driver');
  });

  it('ignores unknown types, non-JSON and non-object frames', () => {
    expect(reduce(base, msg({ type: 'future-thing', x: 1 }))).toBe(base);
    expect(reduce(base, { type: 'message', data: 'not json' })).toBe(base);
    expect(reduce(base, { type: 'message', data: '[1,2]' })).toBe(base);
  });

  it('frames after detach are ignored', () => {
    expect(reduce(initialState, hello())).toBe(initialState);
  });
});

describe('close codes', () => {
  const base = run([hello(), msg({ type: 'participants', drivers: 1, observers: 0 })], attached());
  const close = (code: number, from: AttachState = base): AttachState => reduce(from, { type: 'close', code, reason: '' });

  it('exit then 1000: process exited with its code, no reconnect', () => {
    const s = close(1000, reduce(base, msg({ type: 'exit', code: 3 })));
    expect(s.phase).toBe('closed');
    expect(s.reconnect).toBe(false);
    expect(s.closeMessage).toBe('The process exited with code 3.');
    expect(s.you).toBe(false);
    expect(s.participants).toBeNull();
    expect(canSendInput(s)).toBe(false);
  });

  it('1000 without an exit frame still does not reconnect', () => {
    expect(close(1000).reconnect).toBe(false);
    expect(close(1000).closeMessage).toBe('The process exited.');
  });

  it.each([
    [1008, /policy violation/],
    [4005, /revoked|deleted/],
    [4000, /idle/],
  ])('%i is final (no reconnect)', (code, text) => {
    const s = close(code);
    expect(s.phase).toBe('closed');
    expect(s.reconnect).toBe(false);
    expect(s.closeMessage).toMatch(text);
  });

  it.each([
    [1001, /shutting down/],
    [1006, /lost|refused/],
    [1009, /too big/],
    [4001, /[Hh]eartbeat/],
    [4002, /maximum lifetime/],
    [4003, /too slow/],
    [1011, /internal error/],
    [4999, /code 4999/],
  ])('%i reconnects', (code, text) => {
    const s = close(code);
    expect(s.phase).toBe('reconnecting');
    expect(s.reconnect).toBe(true);
    expect(s.closeCode).toBe(code);
    expect(s.closeMessage).toMatch(text);
  });

  it('a drop after a shutdown frame is explained as a shutdown', () => {
    const s = close(1006, reduce(base, msg({ type: 'shutdown' })));
    expect(s.closeMessage).toBe('The server is shutting down.');
    expect(s.reconnect).toBe(true);
  });

  it('describeClose covers every code of SPEC §5 with distinct text', () => {
    const codes = [1000, 1001, 1008, 1009, 4000, 4001, 4002, 4003, 4005];
    const texts = new Set(codes.map((c) => describeClose(c).message));
    expect(texts.size).toBe(codes.length);
  });
});

describe('ticket failures', () => {
  const base = attached();

  it.each([401, 403, 404, 400])('%i is fatal: failed, no reconnect', (status) => {
    const s = reduce(base, { type: 'ticket-failed', status, message: 'x' });
    expect(s.phase).toBe('failed');
    expect(s.reconnect).toBe(false);
  });

  it.each([null, 429, 500, 503, 408])('%s is retried', (status) => {
    const s = reduce(base, { type: 'ticket-failed', status, message: 'x' });
    expect(s.phase).toBe('reconnecting');
    expect(s.reconnect).toBe(true);
  });

  it('404 explains that the session is gone', () => {
    expect(reduce(base, { type: 'ticket-failed', status: 404, message: '' }).closeMessage).toMatch(/no longer exists/);
    expect(isFatalTicketStatus(404)).toBe(true);
  });
});

describe('retry bookkeeping', () => {
  it('retry-scheduled records attempt and time; connecting clears the countdown', () => {
    const closed = reduce(run([hello()], attached()), { type: 'close', code: 4001, reason: '' });
    const scheduled = reduce(closed, { type: 'retry-scheduled', attempt: 2, at: 5000 });
    expect(scheduled).toMatchObject({ phase: 'reconnecting', attempt: 2, nextRetryAt: 5000, reconnect: false });
    const connecting = reduce(scheduled, { type: 'connecting' });
    expect(connecting).toMatchObject({ phase: 'reconnecting', attempt: 2, nextRetryAt: null });
  });

  it('give-up fails and keeps the last reason', () => {
    const closed = reduce(run([hello()], attached()), { type: 'close', code: 1006, reason: '' });
    const s = reduce(reduce(closed, { type: 'retry-scheduled', attempt: 8, at: 1 }), { type: 'give-up' });
    expect(s.phase).toBe('failed');
    expect(s.closeMessage).toMatch(/lost or refused.*Gave up after 8/);
  });

  it('attach starts over from a clean state', () => {
    const dirty = reduce(run([hello()], attached()), { type: 'close', code: 4005, reason: '' });
    const s = reduce(dirty, { type: 'attach', sessionId: 's2', role: 'observer' });
    expect(s).toEqual({ ...initialState, phase: 'connecting', sessionId: 's2', requestedRole: 'observer' });
  });
});

describe('parseDeadline', () => {
  it('handles RFC 3339, unix ms, unix seconds, numeric strings and junk', () => {
    expect(parseDeadline('2030-01-01T00:00:00+01:00')).toBe(Date.UTC(2029, 11, 31, 23));
    expect(parseDeadline(1_893_456_000_000)).toBe(1_893_456_000_000);
    expect(parseDeadline(1_893_456_000)).toBe(1_893_456_000_000);
    expect(parseDeadline('1893456000000')).toBe(1_893_456_000_000);
    expect(parseDeadline('soon')).toBeNull();
    expect(parseDeadline(null)).toBeNull();
    expect(parseDeadline(-5)).toBeNull();
  });
});

describe('SPEC §8 frames', () => {
  it('hello records the PTY size and whether it resumed; older hellos leave both unset', () => {
    expect(run([hello({ size: { cols: 132, rows: 43 }, resumed: true, output_offset: 9 })], attached())).toMatchObject({
      size: { cols: 132, rows: 43 },
      resumed: true,
    });
    expect(run([hello()], attached())).toMatchObject({ size: null, resumed: false });
  });

  it('size frames move the size; malformed ones are ignored', () => {
    const s = run([hello({ size: { cols: 80, rows: 24 } }), msg({ type: 'size', cols: 100, rows: 50 })], attached());
    expect(s.size).toEqual({ cols: 100, rows: 50 });
    expect(run([msg({ type: 'size', cols: 0, rows: 50 })], s).size).toEqual({ cols: 100, rows: 50 });
    expect(parseSize({ cols: 1001, rows: 2 })).toBeNull();
    expect(parseSize({ cols: 2.5, rows: 2 })).toBeNull();
  });

  it('snapshots: a join is silent, resync and resume_gap leave a notice', () => {
    const base = run([hello()], attached());
    const snap = (reason: string, skipped: number) =>
      msg({ type: 'snapshot', offset: 1, cols: 90, rows: 20, reason, skipped_bytes: skipped });
    expect(run([snap('join', 0)], base)).toMatchObject({ notice: null, size: { cols: 90, rows: 20 } });
    expect(run([snap('resync', 17_249_000)], base).notice).toBe('Output was faster than this page: skipped 17.2 MB to catch up.');
    expect(run([snap('resume_gap', 0)], base).notice).toBe('Reconnected: the screen was redrawn.');
  });

  it('formatBytes uses decimal units', () => {
    expect([0, 1, 999, 1000, 64_000, 999_999, 17_249_000, 3e9].map(formatBytes)).toEqual([
      '0 bytes',
      '1 byte',
      '999 bytes',
      '1.0 kB',
      '64.0 kB',
      '1000 kB',
      '17.2 MB',
      '3.0 GB',
    ]);
  });
});

describe('when retrying cannot help', () => {
  it('the session is gone after exit (1000), idle close (4000) and a 404 ticket answer', () => {
    const c = run([hello()], attached());
    expect(sessionGone(run([{ type: 'close', code: CLOSE.NORMAL, reason: '' }], c))).toBe(true);
    expect(sessionGone(run([{ type: 'close', code: CLOSE.SESSION_IDLE, reason: '' }], c))).toBe(true);
    expect(sessionGone(run([{ type: 'ticket-failed', status: 404, message: '' }], attached()))).toBe(true);
  });

  it('but not after a revoke, a policy close or a refused token', () => {
    const c = run([hello()], attached());
    expect(sessionGone(run([{ type: 'close', code: CLOSE.REVOKED, reason: '' }], c))).toBe(false);
    expect(sessionGone(run([{ type: 'close', code: CLOSE.POLICY_VIOLATION, reason: '' }], c))).toBe(false);
    expect(sessionGone(run([{ type: 'ticket-failed', status: 401, message: '' }], attached()))).toBe(false);
    expect(sessionGone(c)).toBe(false);
  });

  it('a 429 window is closed until its Retry-After time; a new attempt reopens it', () => {
    const s = run([{ type: 'ticket-failed', status: 429, message: '', retryAt: 5_000 }], attached());
    expect(rateLimited(s, 4_999)).toBe(true);
    expect(rateLimited(s, 5_000)).toBe(false);
    expect(run([{ type: 'connecting' }], s).rateLimitedUntil).toBeNull();
  });
});
