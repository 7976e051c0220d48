// Unit tests for the AttachController with a fake socket, ticket endpoint and clock:
// fresh ticket per attempt, reset before replay, input gating, backoff and when not to reconnect,
// output offsets (snapshots, resume, acks), throttled resizes and 429 Retry-After waits.

import { describe, expect, it } from 'vitest';

import { ApiError } from '../src/api';
import { AttachController, type SocketHandlers } from '../src/attach';
import type { AttachState, Role } from '../src/protocol';

interface FakeSocket {
  handlers: SocketHandlers;
  sent: (string | Uint8Array)[];
  closed: number | null;
}

function setup(ticket: (n: number) => Promise<void> = () => Promise.resolve()) {
  const sockets: FakeSocket[] = [];
  const tickets: { sessionId: string; role: Role; resumeFrom: number | null }[] = [];
  const rendered: (() => void)[] = [];
  const timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  const log: string[] = [];
  const states: AttachState[] = [];
  let now = 1_000_000;
  const ctl = new AttachController(
    {
      requestTicket: (sessionId, role, resumeFrom) => {
        tickets.push({ sessionId, role, resumeFrom });
        return ticket(tickets.length);
      },
      openSocket: (_id, handlers) => {
        const s: FakeSocket = { handlers, sent: [], closed: null };
        sockets.push(s);
        return { send: (d) => s.sent.push(d), close: (code) => void (s.closed = code ?? 1005) };
      },
      now: () => now,
      setTimer: (fn, ms) => {
        const t = { fn, ms, cancelled: false };
        timers.push(t);
        return t;
      },
      clearTimer: (h) => void ((h as { cancelled: boolean }).cancelled = true),
      random: () => 0.5,
      backoff: { baseMs: 500, capMs: 15_000, maxAttempts: 3 },
    },
    {
      onState: (s) => states.push(s),
      onOutput: (b, done) => {
        log.push(`out:${new TextDecoder().decode(b)}`);
        rendered.push(done);
      },
      onReset: (size) => log.push(size ? `reset:${size.cols}x${size.rows}` : 'reset'),
      onSize: (size) => log.push(`size:${size.cols}x${size.rows}`),
      getSize: () => ({ cols: 120, rows: 40 }),
    },
  );
  const flush = () => new Promise<void>((r) => setTimeout(r, 0));
  const fire = async () => {
    const t = timers.filter((x) => !x.cancelled).at(-1);
    if (!t) throw new Error('no timer');
    t.cancelled = true;
    now += t.ms;
    t.fn();
    await flush();
  };
  /** Timers still pending, by delay. */
  const pending = () => timers.filter((x) => !x.cancelled).map((x) => x.ms);
  const advance = (ms: number) => void (now += ms);
  const clock = () => now;
  const last = () => {
    const s = sockets.at(-1);
    if (!s) throw new Error('no socket');
    return s;
  };
  const text = (sock: FakeSocket) => sock.sent.filter((d): d is string => typeof d === 'string').map((d) => JSON.parse(d) as unknown);
  return { ctl, sockets, tickets, timers, log, states, rendered, flush, fire, pending, advance, clock, last, text };
}

const hello = (id: string, you: boolean, role: Role = 'driver', extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: 'hello',
    session_id: 's1',
    connection_id: id,
    role,
    control: { holder: you ? id : null, you },
    idle_deadline: null,
    limits: { max_message_bytes: 4, ping_interval_ms: 15000 },
    ...extra,
  });

/** A SPEC §8 hello: with the output offset, the PTY size and whether it resumed. */
const hello8 = (id: string, you: boolean, offset: number, resumed = false, role: Role = 'driver') =>
  hello(id, you, role, { output_offset: offset, size: { cols: 100, rows: 30 }, resumed });

const snapshot = (offset: number, reason = 'join', skipped = 0) =>
  JSON.stringify({ type: 'snapshot', offset, cols: 90, rows: 20, reason, skipped_bytes: skipped });

const bytes = (s: string) => new TextEncoder().encode(s);

describe('AttachController', () => {
  it('requests a cookie ticket, then opens the socket; hello resets the terminal before the replay', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    expect(t.ctl.state.phase).toBe('connecting');
    expect(t.sockets).toHaveLength(0); // no socket before the ticket answered
    await t.flush();
    expect(t.tickets).toEqual([{ sessionId: 's1', role: 'driver', resumeFrom: null }]);
    t.last().handlers.onText(hello('c1', true));
    t.last().handlers.onBinary(new TextEncoder().encode('$ '));
    expect(t.log).toEqual(['reset', 'out:$ ']);
    expect(t.ctl.state.phase).toBe('connected');
  });

  it('gaining control sends the current size; input is chunked to max_message_bytes', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello('c1', true));
    expect(t.pending()).toEqual([100]); // resizes go out on the throttle's trailing edge
    await t.fire();
    expect(t.last().sent).toEqual([JSON.stringify({ type: 'resize', cols: 120, rows: 40 })]);
    expect(t.ctl.sendInput('abcdef')).toBe(true);
    const bins = t.last().sent.slice(1) as Uint8Array[];
    expect(bins.map((b) => new TextDecoder().decode(b))).toEqual(['abcd', 'ef']);
    expect(bins.every((b) => b instanceof Uint8Array)).toBe(true);
  });

  it('sends nothing without control; acquire/release send control frames', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello('c1', false));
    expect(t.ctl.sendInput('x')).toBe(false);
    expect(t.ctl.sendResize(80, 24)).toBe(false);
    expect(t.ctl.release()).toBe(false);
    expect(t.ctl.acquire()).toBe(true);
    expect(t.last().sent).toEqual([JSON.stringify({ type: 'control', action: 'acquire' })]);
    t.last().handlers.onText(JSON.stringify({ type: 'control', holder: { connection_id: 'c1', subject: 'alice' }, reason: 'acquired' }));
    expect(t.ctl.sendInput('x')).toBe(true);
    expect(t.ctl.release()).toBe(true);
    expect(t.last().sent.at(-1)).toBe(JSON.stringify({ type: 'control', action: 'release' }));
  });

  it('observers never send keystrokes', async () => {
    const t = setup();
    t.ctl.start('s1', 'observer');
    await t.flush();
    t.last().handlers.onText(hello('c1', false, 'observer'));
    expect(t.ctl.sendInput('ls\r')).toBe(false);
    expect(t.ctl.acquire()).toBe(false);
    expect(t.last().sent).toEqual([]);
  });

  it('reconnects with backoff and a fresh ticket per attempt, then gives up', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello('c1', true));
    t.last().handlers.onClose(1001, '');
    expect(t.ctl.state).toMatchObject({ phase: 'reconnecting', attempt: 1, nextRetryAt: 1_000_000 + 250 });
    expect(t.timers.at(-1)?.ms).toBe(250);
    for (const [attempt, ms] of [
      [2, 500],
      [3, 1000],
    ] as const) {
      await t.fire();
      t.last().handlers.onClose(1006, '');
      expect(t.ctl.state.attempt).toBe(attempt);
      expect(t.timers.at(-1)?.ms).toBe(ms);
    }
    await t.fire();
    t.last().handlers.onClose(1006, '');
    expect(t.ctl.state.phase).toBe('failed');
    expect(t.tickets).toHaveLength(4); // initial + 3 retries, each with its own ticket
    expect(t.sockets).toHaveLength(4);
  });

  it('a successful hello resets the attempt counter', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onClose(1006, '');
    await t.fire();
    t.last().handlers.onClose(1006, '');
    expect(t.ctl.state.attempt).toBe(2);
    await t.fire();
    t.last().handlers.onText(hello('c3', true));
    expect(t.ctl.state).toMatchObject({ phase: 'connected', attempt: 0 });
    expect(t.log.filter((l) => l === 'reset')).toHaveLength(1);
  });

  it.each([1000, 1008, 4005])('does not reconnect after close %i', async (code) => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello('c1', true));
    t.last().handlers.onClose(code, '');
    expect(t.ctl.state.phase).toBe('closed');
    expect(t.pending()).toEqual([]); // no reconnect scheduled (the resize was dropped with the socket)
  });

  it.each([401, 403, 404])('does not retry when the ticket POST answers %i', async (status) => {
    const t = setup(() => Promise.reject(new ApiError(status, 'x', 'nope')));
    t.ctl.start('s1', 'driver');
    await t.flush();
    expect(t.ctl.state.phase).toBe('failed');
    expect(t.timers).toHaveLength(0);
    expect(t.sockets).toHaveLength(0);
  });

  it('retries when the ticket POST fails on the network, e.g. during a restart', async () => {
    const t = setup((n) => (n === 1 ? Promise.reject(new TypeError('Failed to fetch')) : Promise.resolve()));
    t.ctl.start('s1', 'driver');
    await t.flush();
    expect(t.ctl.state.phase).toBe('reconnecting');
    expect(t.ctl.state.closeMessage).toMatch(/Could not reach the server/);
    await t.fire();
    t.last().handlers.onText(hello('c2', true));
    expect(t.ctl.state.phase).toBe('connected');
  });

  it('retry() starts over; stop() closes the socket, cancels timers and ignores late events', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    const first = t.last();
    first.handlers.onClose(4005, '');
    expect(t.ctl.state.phase).toBe('closed');
    t.ctl.retry();
    await t.flush();
    expect(t.tickets).toHaveLength(2);
    t.last().handlers.onClose(1006, '');
    expect(t.timers.filter((x) => !x.cancelled)).toHaveLength(1);
    t.ctl.stop();
    expect(t.timers.every((x) => x.cancelled)).toBe(true);
    expect(t.ctl.state.phase).toBe('idle');
    first.handlers.onText(hello('late', true));
    expect(t.ctl.state.phase).toBe('idle');
  });

  it('switching sessions closes the old socket and ignores its frames', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    const old = t.last();
    t.ctl.start('s2', 'observer');
    expect(old.closed).toBe(1000);
    await t.flush();
    old.handlers.onBinary(new TextEncoder().encode('stale'));
    old.handlers.onClose(1006, '');
    expect(t.log).toEqual([]);
    expect(t.ctl.state).toMatchObject({ sessionId: 's2', phase: 'connecting' });
  });
});

describe('AttachController, SPEC §8 terminal state', () => {
  it('an older server (no output_offset): no acks, no resume_from, hello resets as before', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello('c1', false));
    t.last().handlers.onBinary(bytes('abc'));
    for (const done of t.rendered) done();
    expect(t.pending()).toEqual([]);
    expect(t.ctl.outputOffset).toBeNull();
    t.last().handlers.onClose(1006, '');
    await t.fire();
    expect(t.tickets.map((x) => x.resumeFrom)).toEqual([null, null]);
    t.last().handlers.onText(hello('c2', false));
    expect(t.log.filter((l) => l === 'reset')).toHaveLength(2);
    expect(t.last().sent).toEqual([]);
  });

  it('a snapshot resets at its size; its payload does not advance the offset, output does', async () => {
    const t = setup();
    t.ctl.start('s1', 'observer');
    await t.flush();
    t.last().handlers.onText(hello8('c1', false, 0, false, 'observer'));
    t.last().handlers.onText(snapshot(5000));
    t.last().handlers.onBinary(bytes('SCREEN'));
    expect(t.ctl.outputOffset).toBe(5000);
    t.last().handlers.onBinary(bytes('0123456789'));
    expect(t.ctl.outputOffset).toBe(5010);
    expect(t.log).toEqual(['reset:100x30', 'reset:90x20', 'out:SCREEN', 'out:0123456789']);
    expect(t.ctl.state.size).toEqual({ cols: 90, rows: 20 });
    t.last().handlers.onText(JSON.stringify({ type: 'size', cols: 132, rows: 43 }));
    expect(t.log.at(-1)).toBe('size:132x43');
    expect(t.ctl.state.size).toEqual({ cols: 132, rows: 43 });
  });

  it('acks the rendered offset from the write callback, throttled, and at once past 64 KiB', async () => {
    const t = setup();
    t.ctl.start('s1', 'observer');
    await t.flush();
    t.last().handlers.onText(hello8('c1', false, 1000, false, 'observer'));
    t.last().handlers.onBinary(bytes('aaaa'));
    t.last().handlers.onBinary(bytes('bb'));
    expect(t.pending()).toEqual([]); // nothing rendered yet: nothing to ack
    t.rendered[0]?.();
    t.rendered[1]?.();
    expect(t.pending()).toEqual([16]);
    expect(t.text(t.last())).toEqual([]);
    await t.fire();
    expect(t.text(t.last())).toEqual([{ type: 'ack', offset: 1006 }]);
    t.last().handlers.onBinary(new Uint8Array(64 * 1024));
    t.rendered[2]?.();
    expect(t.text(t.last()).at(-1)).toEqual({ type: 'ack', offset: 1006 + 64 * 1024 });
    expect(t.pending()).toEqual([]);
  });

  it('reconnects with resume_from = the rendered offset; a resumed hello keeps the screen', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello8('c1', false, 0));
    t.last().handlers.onText(snapshot(700));
    t.last().handlers.onBinary(bytes('SCREEN'));
    t.last().handlers.onBinary(bytes('xyz'));
    t.last().handlers.onClose(1006, '');
    await t.fire();
    expect(t.tickets.at(-1)?.resumeFrom).toBe(703);
    t.last().handlers.onText(hello8('c2', false, 703, true));
    expect(t.ctl.state.resumed).toBe(true);
    t.last().handlers.onBinary(bytes('!'));
    expect(t.log).toEqual(['reset:100x30', 'reset:90x20', 'out:SCREEN', 'out:xyz', 'size:100x30', 'out:!']);
    expect(t.ctl.outputOffset).toBe(704);
  });

  it('a gap on resume: the resume_gap snapshot resets and says so', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello8('c1', false, 10));
    t.last().handlers.onClose(1006, '');
    await t.fire();
    expect(t.tickets.at(-1)?.resumeFrom).toBe(10);
    t.last().handlers.onText(hello8('c2', false, 4_000_000, false));
    t.last().handlers.onText(snapshot(4_000_000, 'resume_gap', 3_999_990));
    expect(t.ctl.state.notice).toMatch(/4\.0 MB of output were no longer held/);
  });

  it('a resync snapshot is noted with the bytes skipped', async () => {
    const t = setup();
    t.ctl.start('s1', 'observer');
    await t.flush();
    t.last().handlers.onText(hello8('c1', false, 0, false, 'observer'));
    t.last().handlers.onText(snapshot(17_300_000, 'resync', 17_200_000));
    expect(t.ctl.state.notice).toMatch(/skipped 17\.2 MB to catch up/);
  });

  it('a connection lost between a snapshot and its payload joins afresh instead of resuming', async () => {
    const t = setup();
    t.ctl.start('s1', 'observer');
    await t.flush();
    t.last().handlers.onText(hello8('c1', false, 0, false, 'observer'));
    t.last().handlers.onText(snapshot(900));
    t.last().handlers.onClose(1006, '');
    await t.fire();
    expect(t.tickets.at(-1)?.resumeFrom).toBeNull();
  });

  it('start() forgets the offset (a fresh attach); retry() keeps it (resume)', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello8('c1', false, 42));
    t.last().handlers.onClose(4005, '');
    expect(t.ctl.retry()).toBe(true);
    await t.flush();
    expect(t.tickets.at(-1)?.resumeFrom).toBe(42);
    t.ctl.start('s1', 'driver');
    await t.flush();
    expect(t.tickets.at(-1)?.resumeFrom).toBeNull();
  });

  it('a resize storm leaves one resize per 100 ms, with the last size', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello8('c1', true, 0));
    for (let i = 0; i < 20; i++) expect(t.ctl.sendResize(100 - i, 30)).toBe(true);
    expect(t.text(t.last())).toEqual([]);
    await t.fire();
    expect(t.text(t.last())).toEqual([{ type: 'resize', cols: 81, rows: 30 }]);
    t.ctl.sendResize(81, 30); // unchanged: not sent again
    await t.fire();
    t.ctl.sendResize(70, 25);
    await t.fire();
    expect(t.text(t.last())).toEqual([
      { type: 'resize', cols: 81, rows: 30 },
      { type: 'resize', cols: 70, rows: 25 },
    ]);
  });

  it('a resize queued when control is lost is not sent', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello8('c1', true, 0));
    await t.fire();
    t.ctl.sendResize(50, 20);
    t.last().handlers.onText(JSON.stringify({ type: 'control', holder: null, reason: 'revoked' }));
    await t.fire();
    expect(t.text(t.last())).toEqual([{ type: 'resize', cols: 120, rows: 40 }]);
  });
  it.each(['grant', 'release'])('a resize queued before a %s is not sent', async (action) => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onText(hello8('c1', true, 0));
    await t.fire();
    const from = { connection_id: 'c2', subject: 'bob', name: 'Bob' };
    t.last().handlers.onText(JSON.stringify({ type: 'control_request', from }));
    t.ctl.sendResize(50, 20);
    expect(t.pending()).toEqual([100]);
    expect(action === 'grant' ? t.ctl.answer('c2', true) : t.ctl.release()).toBe(true);
    expect(t.pending()).toEqual([]);
    expect(t.text(t.last()).filter((f) => (f as { type?: string }).type === 'resize')).toEqual([{ type: 'resize', cols: 120, rows: 40 }]);
  });
});

describe('AttachController and 429 Retry-After', () => {
  it('a socket that closes before it opened is explained as a refused handshake', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    await t.flush();
    t.last().handlers.onClose(1006, '');
    expect(t.ctl.state.closeMessage).toMatch(/^The server refused the connection before it opened/);
    await t.fire();
    t.last().handlers.onOpen();
    t.last().handlers.onText(hello('c1', true));
    t.last().handlers.onClose(1006, '');
    expect(t.ctl.state.closeMessage).toBe('The connection was lost or refused.');
  });

  it('waits out Retry-After without spending a backoff attempt; Retry is refused meanwhile', async () => {
    const t = setup((n) => (n === 1 ? Promise.reject(new ApiError(429, 'rate_limited', 'slow down', 12_000)) : Promise.resolve()));
    t.ctl.start('s1', 'driver');
    await t.flush();
    expect(t.ctl.state).toMatchObject({ phase: 'reconnecting', attempt: 0, rateLimitedUntil: t.clock() + 12_000 });
    expect(t.ctl.state.closeMessage).toMatch(/too many attempts \(429\)/);
    expect(t.pending()).toEqual([12_000]);
    t.advance(5_000);
    expect(t.ctl.retry()).toBe(false);
    expect(t.tickets).toHaveLength(1);
    t.advance(-5_000);
    await t.fire();
    expect(t.tickets).toHaveLength(2);
    t.last().handlers.onText(hello('c1', true));
    expect(t.ctl.state).toMatchObject({ phase: 'connected', rateLimitedUntil: null, attempt: 0 });
  });

  it('a 429 without Retry-After backs off as usual', async () => {
    const t = setup(() => Promise.reject(new ApiError(429, 'rate_limited', 'slow down')));
    t.ctl.start('s1', 'driver');
    await t.flush();
    expect(t.ctl.state).toMatchObject({ phase: 'reconnecting', attempt: 1, rateLimitedUntil: null });
  });
});

describe('AttachController across tabs', () => {
  it('serialises ticket POST -> handshake per session when given a lock', async () => {
    // A minimal in-memory lock standing in for navigator.locks.
    const queues = new Map<string, Promise<void>>();
    const exclusive = (key: string, fn: () => Promise<void>): Promise<void> => {
      const prev = queues.get(key) ?? Promise.resolve();
      const next = prev.then(fn);
      queues.set(key, next.catch(() => {}));
      return next;
    };
    const events: string[] = [];
    const sockets: SocketHandlers[] = [];
    const make = (name: string) =>
      new AttachController(
        {
          requestTicket: () => {
            events.push(`${name}:ticket`);
            return Promise.resolve();
          },
          openSocket: (_id, h) => {
            events.push(`${name}:open`);
            sockets.push(h);
            return { send: () => {}, close: () => {} };
          },
          now: () => 0,
          setTimer: () => 0,
          clearTimer: () => {},
          exclusive,
        },
        { onState: () => {}, onOutput: () => {}, onReset: () => {} },
      );
    const a = make('a');
    const b = make('b');
    a.start('s1', 'driver');
    b.start('s1', 'observer');
    await new Promise((r) => setTimeout(r, 0));
    expect(events).toEqual(['a:ticket', 'a:open']); // b waits: a's cookie is not consumed yet
    sockets[0]?.onOpen();
    await new Promise((r) => setTimeout(r, 0));
    expect(events).toEqual(['a:ticket', 'a:open', 'b:ticket', 'b:open']);
  });
});
