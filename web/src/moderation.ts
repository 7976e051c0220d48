// Moderated sessions (a `moderation` frame after hello and on every change): whether typing
// flows or is held until a moderator attaches, and how that reads to a person.

import { count, type Json } from './json';

export type ModerationState = 'frozen' | 'live';

export interface Moderation {
  readonly state: ModerationState;
  /** Moderators attached, on every replica as the server last counted. */
  readonly moderators: number;
}

function isState(v: unknown): v is ModerationState {
  return v === 'frozen' || v === 'live';
}

/** A `moderation` frame's fields, or null when they are not a moderation state. */
export function parseModeration(f: Json): Moderation | null {
  return isState(f.state) ? { state: f.state, moderators: count(f.moderators) } : null;
}

/** The status bar's moderation field; empty for a session that is not moderated. */
export function moderationText(m: Moderation | null): string {
  if (!m) return '';
  if (m.state === 'frozen') return 'moderated: waiting for a moderator — typing is held';
  return `moderated: live (${m.moderators} moderator${m.moderators === 1 ? '' : 's'})`;
}

/** The notice when the state flips (null when only the count changed). */
export function moderationNotice(before: Moderation | null, now: Moderation): string | null {
  if (before?.state === now.state) return null;
  if (now.state === 'frozen') {
    return before ? 'The moderator left: typing is held until a moderator attaches.' : 'This session is moderated: typing is held until a moderator attaches.';
  }
  return 'A moderator is attached: typing is live.';
}
