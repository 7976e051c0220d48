// Unit tests for the AttachController with a fake socket, ticket endpoint and clock:
// fresh ticket per attempt, reset before replay, input gating, backoff and when not to reconnect.

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
  const tickets: { sessionId: string; role: Role }[] = [];
  const timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  const log: string[] = [];
  const states: AttachState[] = [];
  let now = 1_000_000;
  const ctl = new AttachController(
    {
      requestTicket: (sessionId, role) => {
        tickets.push({ sessionId, role });
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
      onOutput: (b) => log.push(`out:${new TextDecoder().decode(b)}`),
      onReset: () => log.push('reset'),
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
  const last = () => {
    const s = sockets.at(-1);
    if (!s) throw new Error('no socket');
    return s;
  };
  return { ctl, sockets, tickets, timers, log, states, flush, fire, last };
}

const hello = (id: string, you: boolean, role: Role = 'driver') =>
  JSON.stringify({
    type: 'hello',
    session_id: 's1',
    connection_id: id,
    role,
    control: { holder: you ? id : null, you },
    idle_deadline: null,
    limits: { max_message_bytes: 4, ping_interval_ms: 15000 },
  });

describe('AttachController', () => {
  it('requests a cookie ticket, then opens the socket; hello resets the terminal before the replay', async () => {
    const t = setup();
    t.ctl.start('s1', 'driver');
    expect(t.ctl.state.phase).toBe('connecting');
    expect(t.sockets).toHaveLength(0); // no socket before the ticket answered
    await t.flush();
    expect(t.tickets).toEqual([{ sessionId: 's1', role: 'driver' }]);
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
    expect(t.timers).toHaveLength(0);
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
