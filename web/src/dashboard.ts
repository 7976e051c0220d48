// The sessions dashboard's data: the server-sent event stream parser, the dashboard JSON as
// typed cards, ages and countdowns, and thumbnail colours. Pure (no DOM), so it is unit tested.

import { formatDuration } from './format';
import { isObject } from './json';

/** One run of cells with equal attributes, as the server sends it. */
export interface Run {
  readonly text: string;
  readonly fg?: number | string | undefined;
  readonly bg?: number | string | undefined;
  readonly attrs?: readonly string[] | undefined;
}

/** A session's visible screen as text and attributes. */
export interface Thumbnail {
  readonly offset: number;
  readonly cols: number;
  readonly rows: number;
  readonly cursor: { readonly col: number; readonly row: number } | null;
  readonly lines: readonly (readonly Run[])[];
}

export interface Holder {
  readonly connectionId: string;
  readonly subject: string;
  /** The holder's display name (the token's `name` or `preferred_username`), if it has one. */
  readonly name: string | null;
}

export interface SessionCard {
  readonly id: string;
  readonly name: string | null;
  readonly command: readonly string[];
  readonly backend: string;
  readonly pod: string | null;
  readonly createdAt: string | null;
  readonly idleDeadline: string | null;
  readonly holder: Holder | null;
  readonly drivers: number;
  readonly observers: number;
  readonly thumbnail: Thumbnail | null;
}

export interface Viewer {
  readonly subject: string;
  readonly scopes: readonly string[];
}

export interface DashboardData {
  readonly viewer: Viewer;
  readonly sessions: readonly SessionCard[];
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function parseRun(v: unknown): Run | null {
  if (!isObject(v) || typeof v.text !== 'string') return null;
  const color = (c: unknown) => (typeof c === 'number' || typeof c === 'string' ? c : undefined);
  const attrs = Array.isArray(v.attrs) ? v.attrs.filter((a): a is string => typeof a === 'string') : undefined;
  return { text: v.text, fg: color(v.fg), bg: color(v.bg), attrs };
}

export function parseThumbnail(v: unknown): Thumbnail | null {
  if (!isObject(v) || !Array.isArray(v.lines)) return null;
  const cursor = isObject(v.cursor) ? { col: num(v.cursor.col), row: num(v.cursor.row) } : null;
  const lines = v.lines.map((l) => (Array.isArray(l) ? l.map(parseRun).filter((r): r is Run => r !== null) : []));
  return { offset: num(v.offset), cols: num(v.cols), rows: num(v.rows), cursor, lines };
}

function parseCard(v: unknown): SessionCard | null {
  if (!isObject(v) || typeof v.id !== 'string') return null;
  const h = isObject(v.holder) && typeof v.holder.connection_id === 'string' ? v.holder : null;
  return {
    id: v.id,
    name: str(v.name),
    command: Array.isArray(v.command) ? v.command.filter((c): c is string => typeof c === 'string') : [],
    backend: str(v.backend) ?? '?',
    pod: str(v.pod),
    createdAt: str(v.created_at),
    idleDeadline: str(v.idle_deadline),
    holder: h ? { connectionId: h.connection_id as string, subject: str(h.subject) ?? '?', name: str(h.name) } : null,
    drivers: num(v.drivers),
    observers: num(v.observers),
    thumbnail: parseThumbnail(v.thumbnail),
  };
}

/** `GET /api/v1/dashboard` (and each `sessions` event of its stream). */
export function parseDashboard(body: unknown): DashboardData {
  const viewer = isObject(body) && isObject(body.viewer) ? body.viewer : {};
  const sessions = isObject(body) && Array.isArray(body.sessions) ? body.sessions : [];
  return {
    viewer: {
      subject: str(viewer.subject) ?? '',
      scopes: Array.isArray(viewer.scopes) ? viewer.scopes.filter((s): s is string => typeof s === 'string') : [],
    },
    sessions: sessions.map(parseCard).filter((c): c is SessionCard => c !== null),
  };
}

export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** Incremental `text/event-stream` parser (the subset the server speaks: event, data, comments). */
export class SseParser {
  #buf = '';
  #event = '';
  #data: string[] = [];

  /** Feeds decoded text; returns the events it completed. */
  feed(text: string): SseEvent[] {
    this.#buf += text;
    const out: SseEvent[] = [];
    let nl: number;
    while ((nl = this.#buf.search(/\r?\n/)) >= 0) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + (this.#buf[nl] === '\r' ? 2 : 1));
      if (line === '') {
        if (this.#data.length > 0) out.push({ event: this.#event || 'message', data: this.#data.join('\n') });
        this.#event = '';
        this.#data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.#event = value;
      else if (field === 'data') this.#data.push(value);
    }
    return out;
  }
}

/** The card's label for where the session runs. */
export function backendText(c: SessionCard): string {
  return c.pod ? `pod ${c.pod}` : c.backend;
}

/** "3:07" since `createdAt`, or "—". */
export function ageText(createdAt: string | null, now: number): string {
  const t = createdAt ? Date.parse(createdAt) : NaN;
  return Number.isNaN(t) ? '—' : formatDuration(now - t);
}

/** "closes in 29:41" until the idle deadline, or "—". */
export function idleCountdownText(deadline: string | null, now: number): string {
  const t = deadline ? Date.parse(deadline) : NaN;
  return Number.isNaN(t) ? '—' : `closes in ${formatDuration(t - now)}`;
}

/** Who holds control, by display name when the holder has one (else by subject). */
export function holderName(c: SessionCard): string {
  return c.holder ? (c.holder.name ?? c.holder.subject) : 'nobody';
}

/** The holder's subject and connection, for a tooltip (empty when nobody holds control). */
export function holderDetail(c: SessionCard): string {
  return c.holder ? `${c.holder.subject} (${c.holder.connectionId})` : '';
}

export function countsText(c: SessionCard): string {
  const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;
  return `${plural(c.drivers, 'driver')} · ${plural(c.observers, 'observer')}`;
}

const BASE16 = [
  '#000000', '#cd0000', '#00cd00', '#cdcd00', '#0000ee', '#cd00cd', '#00cdcd', '#e5e5e5',
  '#7f7f7f', '#ff0000', '#00ff00', '#ffff00', '#5c5cff', '#ff00ff', '#00ffff', '#ffffff',
];

/** CSS colour of a run colour: an xterm palette index (0–255) or `#rrggbb`. */
export function cssColor(c: number | string | undefined): string | null {
  if (typeof c === 'string') return /^#[0-9a-f]{6}$/i.test(c) ? c : null;
  if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > 255) return null;
  if (c < 16) return BASE16[c] ?? null;
  const hex = (v: number) => v.toString(16).padStart(2, '0');
  if (c >= 232) {
    const g = 8 + (c - 232) * 10;
    return `#${hex(g)}${hex(g)}${hex(g)}`;
  }
  const i = c - 16;
  const level = (v: number) => (v === 0 ? 0 : 55 + v * 40);
  return `#${hex(level(Math.floor(i / 36)))}${hex(level(Math.floor(i / 6) % 6))}${hex(level(i % 6))}`;
}

/** The rows of a thumbnail as plain text (what the card shows, without attributes). */
export function thumbnailRows(t: Thumbnail): string[] {
  return t.lines.map((runs) => runs.map((r) => r.text).join(''));
}
