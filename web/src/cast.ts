// asciicast v2 (SPEC §9): a JSON header line, then one `[time, code, data]` line per event.
// Parsing and the play timeline (with idle pauses capped) as pure functions for the player.

import { isObject } from './json';

export interface CastHeader {
  readonly width: number;
  readonly height: number;
  /** Unix seconds of the recording's start, when the header has it. */
  readonly timestamp: number | null;
  /** The session id. */
  readonly title: string | null;
}

export interface CastEvent {
  /** Seconds since the start of the file. */
  readonly time: number;
  /** `o` output, `i` input, `r` resize ("COLSxROWS"), `m` marker. */
  readonly code: string;
  readonly data: string;
}

export interface Cast {
  readonly header: CastHeader;
  readonly events: readonly CastEvent[];
}

export class CastError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CastError';
  }
}

function dimension(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000) throw new CastError(`header: bad ${what}`);
  return v;
}

/** Parses a whole file; times must never go back. */
export function parseCast(text: string): Cast {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new CastError('empty recording');
  let head: unknown;
  try {
    head = JSON.parse(lines[0]!);
  } catch {
    throw new CastError('header: not JSON');
  }
  if (!isObject(head) || head.version !== 2) throw new CastError('header: not asciicast version 2');
  const header: CastHeader = {
    width: dimension(head.width, 'width'),
    height: dimension(head.height, 'height'),
    timestamp: typeof head.timestamp === 'number' ? head.timestamp : null,
    title: typeof head.title === 'string' ? head.title : null,
  };
  const events: CastEvent[] = [];
  let last = 0;
  for (let i = 1; i < lines.length; i++) {
    let v: unknown;
    try {
      v = JSON.parse(lines[i]!);
    } catch {
      throw new CastError(`event ${i}: not JSON`);
    }
    if (!Array.isArray(v) || typeof v[0] !== 'number' || typeof v[1] !== 'string' || typeof v[2] !== 'string') {
      throw new CastError(`event ${i}: not [time, code, data]`);
    }
    const time = v[0];
    if (!(time >= last)) throw new CastError(`event ${i}: time goes back`);
    last = time;
    events.push({ time, code: v[1], data: v[2] });
  }
  return { header, events };
}

/** `"COLSxROWS"` of a resize event. */
export function parseSize(data: string): { cols: number; rows: number } | null {
  const m = /^(\d{1,4})x(\d{1,4})$/.exec(data);
  if (!m) return null;
  const cols = Number(m[1]);
  const rows = Number(m[2]);
  return cols >= 1 && rows >= 1 ? { cols, rows } : null;
}

/**
 * When each event plays, in seconds from the start: the recorded times, except that with
 * `maxIdle` every pause longer than it is shortened to it ("skip idle").
 */
export function timeline(events: readonly CastEvent[], maxIdle: number | null): number[] {
  const out: number[] = [];
  let prev = 0;
  let at = 0;
  for (const e of events) {
    const gap = e.time - prev;
    at += maxIdle === null ? gap : Math.min(gap, maxIdle);
    prev = e.time;
    out.push(at);
  }
  return out;
}

/** How many events are due at play time `t` (those at or before it), by binary search. */
export function dueCount(times: readonly number[], t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `m:ss` of a play position in seconds. */
export function clockText(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
