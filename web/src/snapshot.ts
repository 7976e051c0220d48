// SPEC §8 terminal frames: the session's size and the `snapshot` frame (parsing, and the note a
// resync or a resume gap leaves on the page).

import { formatBytes } from './format';
import { count, isObject, type Json } from './json';
import { isOffset } from './offset';

/** A terminal size in character cells. */
export interface TermSize {
  readonly cols: number;
  readonly rows: number;
}

/** Why a snapshot was sent (SPEC §8). */
export type SnapshotReason = 'join' | 'resync' | 'resume_gap';

export interface Snapshot {
  readonly offset: number | null;
  readonly size: TermSize | null;
  readonly reason: SnapshotReason | null;
  readonly skippedBytes: number;
}


/** A `{cols, rows}` object with positive integer dimensions, or null. */
export function parseSize(v: unknown): TermSize | null {
  if (!isObject(v)) return null;
  const { cols, rows } = v;
  const dim = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 1000;
  return dim(cols) && dim(rows) ? { cols, rows } : null;
}

/** The fields of a `snapshot` frame (SPEC §8); missing or malformed fields become null / 0. */
export function parseSnapshot(f: Json): Snapshot {
  const reason = f.reason === 'join' || f.reason === 'resync' || f.reason === 'resume_gap' ? f.reason : null;
  const offset = isOffset(f.offset) ? f.offset : null;
  return { offset, size: parseSize(f), reason, skippedBytes: count(f.skipped_bytes) };
}

/** The note a snapshot leaves for the person watching, if its reason deserves one. */
export function snapshotNotice(snap: Snapshot): string | null {
  switch (snap.reason) {
    case 'resync':
      return `Output was faster than this page: skipped ${formatBytes(snap.skippedBytes)} to catch up.`;
    case 'resume_gap':
      return snap.skippedBytes > 0
        ? `Reconnected: ${formatBytes(snap.skippedBytes)} of output were no longer held, so the screen was redrawn.`
        : 'Reconnected: the screen was redrawn.';
    default:
      return null;
  }
}
