// Unit tests for the status-bar wording (connection state, holder, participants, idle).
// The reducer produces the states; these check what a person reads.

import { describe, expect, it } from 'vitest';

import { type AttachEvent, type AttachState, initialState, reduce } from '../src/protocol';
import {
  connStateText,
  formatDuration,
  holderText,
  idleLevel,
  idleText,
  idleWarningText,
  moderationText,
  participantsText,
  retryText,
  roleText,
  whoamiText,
} from '../src/status';

const msg = (v: unknown): AttachEvent => ({ type: 'message', data: JSON.stringify(v) });
const connected = (control: unknown, deadline: unknown = null): AttachState =>
  [
    { type: 'attach', sessionId: 's', role: 'driver' } as AttachEvent,
    msg({ type: 'hello', connection_id: 'me', role: 'driver', control, idle_deadline: deadline }),
  ].reduce(reduce, initialState);

describe('status texts', () => {
  it('connection state, including the reconnect countdown', () => {
    expect(connStateText(initialState, 0)).toBe('not attached');
    const s = reduce(connected({ holder: 'me', you: true }), { type: 'close', code: 1006, reason: '' });
    const scheduled = reduce(s, { type: 'retry-scheduled', attempt: 2, at: 10_500 });
    expect(connStateText(scheduled, 7_000)).toBe('reconnecting (attempt 2, next try in 4s)');
    expect(connStateText(reduce(scheduled, { type: 'connecting' }), 0)).toBe('reconnecting (attempt 2)');
    expect(connStateText(reduce(scheduled, { type: 'give-up' }), 0)).toBe('failed');
  });

  it('holder: you / subject / someone / nobody', () => {
    expect(holderText(connected({ holder: 'me', you: true }))).toBe('you');
    expect(holderText(connected({ holder: 'other', you: false }))).toBe('someone');
    const named = reduce(connected({ holder: null, you: false }), msg({ type: 'control', holder: { connection_id: 'x', subject: 'bob' }, reason: 'acquired' }));
    expect(holderText(named)).toBe('bob');
    const greeted = connected({ holder: 'other', you: false, subject: 'bob', name: 'Bob B.' });
    expect(holderText(greeted)).toBe('Bob B.');
    expect(holderText(connected({ holder: null, you: false }))).toBe('nobody');
  });

  it('whoami: "you are <name>" once a hello named this connection', () => {
    expect(whoamiText(initialState, false)).toBe('');
    expect(whoamiText(initialState, true)).toBe('signed in');
    const s = reduce(initialState, { type: 'attach', sessionId: 's', role: 'driver' });
    const named = reduce(s, msg({ type: 'hello', connection_id: 'me', role: 'driver', subject: 'alice', control: { holder: null, you: false } }));
    expect(whoamiText(named, true)).toBe('you are alice');
  });

  it('participants and role', () => {
    const s = reduce(connected({ holder: null, you: false }), msg({ type: 'participants', drivers: 1, observers: 2 }));
    expect(participantsText(s)).toBe('1 driver, 2 observers');
    expect(roleText(s)).toBe('driver');
  });

  it('idle countdown', () => {
    const s = connected({ holder: null, you: false }, 1_900_000_000_000);
    expect(idleText(s, 1_900_000_000_000 - 90_500)).toBe('idle close in 1:31');
    expect(idleText(s, 1_900_000_000_001)).toBe('idle deadline reached');
    expect(idleText(connected({ holder: null, you: false }), 0)).toBe('—');
    expect(formatDuration(3_723_000)).toBe('1:02:03');
  });

  it('the idle countdown warns in its last five minutes and says so in its last minute', () => {
    const deadline = 1_900_000_000_000;
    const s = connected({ holder: null, you: false }, deadline);
    expect(idleLevel(s, deadline - 10 * 60_000)).toBe('ok');
    expect(idleLevel(s, deadline - 4 * 60_000)).toBe('warn');
    expect(idleWarningText(s, deadline - 4 * 60_000)).toBeNull();
    expect(idleLevel(s, deadline - 42_000)).toBe('urgent');
    expect(idleWarningText(s, deadline - 42_000)).toBe(
      'The session closes for inactivity in 0:42 unless someone types or it prints output.',
    );
    expect(idleWarningText(s, deadline + 1)).toMatch(/being closed/);
    expect(idleLevel(connected({ holder: null, you: false }), 0)).toBe('none');
  });

  it('a 429 with Retry-After: the state and the Retry button count down', () => {
    const s = reduce(connected({ holder: 'me', you: true }), { type: 'ticket-failed', status: 429, message: '', retryAt: 20_000 });
    expect(connStateText(s, 8_000)).toBe('rate limited (next try in 12s)');
    expect(retryText(s, 8_000)).toBe('Retry in 0:12');
    expect(retryText(s, 20_000)).toBe('Retry');
  });
});

describe('moderation', () => {
  const frame = (state: string, moderators: number): AttachEvent => msg({ type: 'moderation', state, moderators });

  it('is empty for a session that is not moderated', () => {
    expect(moderationText(connected({ holder: 'me', you: true }))).toBe('');
  });

  it('frozen: waiting for a moderator, typing held; live: with the count', () => {
    const frozen = reduce(connected({ holder: 'me', you: true }), frame('frozen', 0));
    expect(moderationText(frozen)).toBe('moderated: waiting for a moderator — typing is held');
    expect(frozen.notice).toBe('This session is moderated: typing is held until a moderator attaches.');
    const live = reduce(frozen, frame('live', 1));
    expect(moderationText(live)).toBe('moderated: live (1 moderator)');
    expect(live.notice).toBe('A moderator is attached: typing is live.');
    const two = reduce(live, frame('live', 2));
    expect(moderationText(two)).toBe('moderated: live (2 moderators)');
    expect(two.notice).toBe(live.notice);
    const again = reduce(two, frame('frozen', 0));
    expect(again.notice).toBe('The moderator left: typing is held until a moderator attaches.');
  });

  it('ignores a malformed frame, and forgets the state on close and on a new hello', () => {
    const live = reduce(connected({ holder: 'me', you: true }), frame('live', 1));
    expect(reduce(live, frame('paused', 1)).moderation).toEqual(live.moderation);
    expect(reduce(live, { type: 'close', code: 1006, reason: '' }).moderation).toBeNull();
    const rehello = reduce(live, msg({ type: 'hello', connection_id: 'me2', role: 'driver', control: { holder: null, you: false } }));
    expect(rehello.moderation).toBeNull();
    expect(moderationText(reduce(live, { type: 'close', code: 1006, reason: '' }))).toBe('');
  });
});
