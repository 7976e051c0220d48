// Status-bar texts derived from the attach state and the current time.
// Pure functions, so the wording shown to people is unit tested.

import { formatDuration } from './format';
import { moderationText as textOf } from './moderation';
import { type AttachState, displayName, rateLimited } from './protocol';

export { formatDuration } from './format';

/** The idle countdown turns to a warning this long before the deadline, and urgent in the last minute. */
export const IDLE_WARN_MS = 5 * 60_000;
export const IDLE_URGENT_MS = 60_000;

export function connStateText(state: AttachState, now: number): string {
  switch (state.phase) {
    case 'idle':
      return 'not attached';
    case 'connecting':
      return 'connecting';
    case 'connected':
      return 'connected';
    case 'reconnecting': {
      if (rateLimited(state, now)) {
        const secs = Math.max(0, Math.ceil(((state.rateLimitedUntil ?? now) - now) / 1000));
        return `rate limited (next try in ${secs}s)`;
      }
      if (state.nextRetryAt === null) return state.attempt > 0 ? `reconnecting (attempt ${state.attempt})` : 'reconnecting';
      const secs = Math.max(0, Math.ceil((state.nextRetryAt - now) / 1000));
      return `reconnecting (attempt ${state.attempt}, next try in ${secs}s)`;
    }
    case 'closed':
      return 'closed';
    case 'failed':
      return 'failed';
  }
}

export function roleText(state: AttachState): string {
  return state.role ?? state.requestedRole ?? '—';
}

export function holderText(state: AttachState): string {
  if (state.phase !== 'connected') return '—';
  if (state.you) return 'you';
  if (state.holder) return displayName(state.holder) ?? 'someone';
  return 'nobody';
}

/** The header's identity line: "you are alice" once a hello named this connection. */
export function whoamiText(state: AttachState, signedIn: boolean): string {
  if (!signedIn) return '';
  const me = state.phase === 'connected' ? displayName(state) : null;
  return me ? `you are ${me}` : 'signed in';
}

/** The moderation field: empty unless connected to a moderated session. */
export function moderationText(state: AttachState): string {
  return state.phase === 'connected' ? textOf(state.moderation) : '';
}

export function participantsText(state: AttachState): string {
  const p = state.participants;
  if (!p || state.phase !== 'connected') return '—';
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(p.drivers, 'driver')}, ${plural(p.observers, 'observer')}`;
}

export function idleText(state: AttachState, now: number): string {
  if (state.phase !== 'connected' || state.idleDeadline === null) return '—';
  const left = state.idleDeadline - now;
  return left <= 0 ? 'idle deadline reached' : `idle close in ${formatDuration(left)}`;
}

export type IdleLevel = 'none' | 'ok' | 'warn' | 'urgent';

/** How close the session is to its idle close: drives the countdown's colour. */
export function idleLevel(state: AttachState, now: number): IdleLevel {
  if (state.phase !== 'connected' || state.idleDeadline === null) return 'none';
  const left = state.idleDeadline - now;
  if (left <= IDLE_URGENT_MS) return 'urgent';
  return left <= IDLE_WARN_MS ? 'warn' : 'ok';
}

/** A line of text in the last minute before the idle close; null otherwise. */
export function idleWarningText(state: AttachState, now: number): string | null {
  if (idleLevel(state, now) !== 'urgent' || state.idleDeadline === null) return null;
  const left = state.idleDeadline - now;
  if (left <= 0) return 'The session is being closed for inactivity.';
  return `The session closes for inactivity in ${formatDuration(left)} unless someone types or it prints output.`;
}

/** The Retry button's label: a countdown while a 429's Retry-After window is closed. */
export function retryText(state: AttachState, now: number): string {
  if (!rateLimited(state, now) || state.rateLimitedUntil === null) return 'Retry';
  return `Retry in ${formatDuration(state.rateLimitedUntil - now)}`;
}
