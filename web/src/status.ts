// Status-bar texts derived from the attach state and the current time.
// Pure functions, so the wording shown to people is unit tested.

import type { AttachState } from './protocol';

/** "m:ss" (or "h:mm:ss") for a non-negative duration in ms, rounded up to the second. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function connStateText(state: AttachState, now: number): string {
  switch (state.phase) {
    case 'idle':
      return 'not attached';
    case 'connecting':
      return 'connecting';
    case 'connected':
      return 'connected';
    case 'reconnecting': {
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
  if (state.holder) return state.holder.subject ? `someone (${state.holder.subject})` : 'someone';
  return 'nobody';
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
