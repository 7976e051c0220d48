// The sessions dashboard page: one card per session (live thumbnail, command, backend, age, idle
// countdown, holder, counts, observe / drive / revoke), fed by the server's event stream.

import type { ApiClient } from './api';
import { ApiError } from './api';
import { ceilingMs } from './backoff';
import {
  ageText,
  backendText,
  countsText,
  cssColor,
  type DashboardData,
  holderDetail,
  holderName,
  idleCountdownText,
  parseDashboard,
  type SessionCard,
  SseParser,
  type Thumbnail,
} from './dashboard';
import type { Role } from './protocol';

export interface DashboardHooks {
  /** Attach this page to a session in a role. */
  attach(sessionId: string, role: Role): void;
  /** The token was refused (401). */
  unauthorized(): void;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Paints a thumbnail into `pre`: one row element per line, one span per run. */
export function paintThumbnail(pre: HTMLElement, t: Thumbnail): void {
  const rows = t.lines.map((runs, i) => {
    const row = el('div', 'thumb-row');
    row.dataset.row = String(i);
    for (const r of runs) {
      const span = el('span', undefined, r.text);
      const inverse = r.attrs?.includes('inverse') ?? false;
      const fg = cssColor(inverse ? r.bg : r.fg);
      const bg = cssColor(inverse ? r.fg : r.bg);
      if (fg) span.style.color = fg;
      if (bg) span.style.backgroundColor = bg;
      if (inverse && !fg) span.classList.add('inverse');
      for (const a of r.attrs ?? []) if (a !== 'inverse') span.classList.add(a);
      row.append(span);
    }
    if (runs.length === 0) row.textContent = '\u00a0';
    return row;
  });
  pre.replaceChildren(...rows);
  pre.dataset.cols = String(t.cols);
  pre.dataset.offset = String(t.offset);
}

interface CardParts {
  root: HTMLElement;
  title: HTMLElement;
  thumb: HTMLElement;
  command: HTMLElement;
  backend: HTMLElement;
  age: HTMLElement;
  idle: HTMLElement;
  holder: HTMLElement;
  counts: HTMLElement;
  revoke: HTMLButtonElement;
  error: HTMLElement;
  data: SessionCard;
}

function fact(dl: HTMLElement, label: string, field: string): HTMLElement {
  const wrap = el('div', 'fact');
  const dd = el('dd');
  dd.dataset.field = field;
  wrap.append(el('dt', undefined, label), dd);
  dl.append(wrap);
  return dd;
}

export class DashboardView {
  readonly #container: HTMLElement;
  readonly #empty: HTMLElement;
  readonly #status: HTMLElement;
  readonly #hooks: DashboardHooks;
  readonly #cards = new Map<string, CardParts>();
  #api: ApiClient | null = null;
  #abort: AbortController | null = null;
  #clock: number | null = null;
  #canModerate = false;

  constructor(container: HTMLElement, empty: HTMLElement, status: HTMLElement, hooks: DashboardHooks) {
    this.#container = container;
    this.#empty = empty;
    this.#status = status;
    this.#hooks = hooks;
  }

  /** Opens the live stream (and keeps it open, reconnecting with backoff) until `stop`. */
  start(api: ApiClient): void {
    this.stop();
    this.#api = api;
    const abort = new AbortController();
    this.#abort = abort;
    this.#clock = window.setInterval(() => this.#tick(), 1000);
    void this.#run(api, abort.signal);
  }

  stop(): void {
    this.#abort?.abort();
    this.#abort = null;
    if (this.#clock !== null) window.clearInterval(this.#clock);
    this.#clock = null;
  }

  async #run(api: ApiClient, signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      try {
        const reader = await api.dashboardStream(signal);
        attempt = 0;
        this.#status.textContent = '';
        this.#status.dataset.state = 'live';
        const parser = new SseParser();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const ev of parser.feed(decoder.decode(value, { stream: true }))) {
            if (ev.event === 'sessions') this.render(parseDashboard(JSON.parse(ev.data)));
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.status === 401) {
          this.#hooks.unauthorized();
          return;
        }
        this.#status.textContent = `Live updates interrupted: ${err instanceof Error ? err.message : String(err)}`;
      }
      if (signal.aborted) return;
      this.#status.dataset.state = 'reconnecting';
      attempt++;
      await new Promise((r) => window.setTimeout(r, ceilingMs(Math.min(attempt, 6))));
    }
  }

  /** Shows `d`: cards are updated in place, added and removed by session id. */
  render(d: DashboardData): void {
    this.#canModerate = d.viewer.scopes.includes('attach:moderate');
    const seen = new Set<string>();
    for (const s of d.sessions) {
      seen.add(s.id);
      let card = this.#cards.get(s.id);
      if (!card) {
        card = this.#card(s);
        this.#cards.set(s.id, card);
      }
      this.#container.append(card.root); // keeps the server's order
      this.#update(card, s);
    }
    for (const [id, card] of this.#cards) {
      if (!seen.has(id)) {
        card.root.remove();
        this.#cards.delete(id);
      }
    }
    this.#empty.hidden = d.sessions.length > 0;
  }

  #card(s: SessionCard): CardParts {
    const root = el('article', 'card');
    root.dataset.testid = 'session-card';
    root.dataset.sessionId = s.id;
    const head = el('header', 'card-head');
    const title = el('h3', 'card-title');
    head.append(title, el('code', 'session-id', s.id));
    const thumb = el('pre', 'thumb');
    thumb.dataset.testid = 'thumbnail';
    thumb.setAttribute('aria-label', `screen of ${s.id}`);
    const dl = el('dl', 'facts');
    const parts = {
      command: fact(dl, 'command', 'command'),
      backend: fact(dl, 'backend', 'backend'),
      age: fact(dl, 'age', 'age'),
      idle: fact(dl, 'idle', 'idle'),
      holder: fact(dl, 'control', 'holder'),
      counts: fact(dl, 'participants', 'counts'),
    };
    const actions = el('div', 'card-actions');
    const button = (label: string, testid: string, onClick: () => void) => {
      const b = el('button', undefined, label);
      b.type = 'button';
      b.dataset.testid = testid;
      b.addEventListener('click', onClick);
      actions.append(b);
      return b;
    };
    button('Observe', 'observe', () => this.#hooks.attach(s.id, 'observer'));
    button('Drive', 'drive', () => this.#hooks.attach(s.id, 'driver'));
    const error = el('p', 'error');
    const revoke = button('Revoke control', 'revoke', () => void this.#revoke(s.id, error));
    root.append(head, thumb, dl, actions, error);
    return { root, title, thumb, revoke, error, data: s, ...parts };
  }

  #update(c: CardParts, s: SessionCard): void {
    c.data = s;
    c.title.textContent = s.name ?? (s.command.join(' ') || s.id);
    c.command.textContent = s.command.length > 0 ? s.command.join(' ') : '(attached)';
    c.backend.textContent = backendText(s);
    c.holder.textContent = holderName(s);
    c.holder.title = holderDetail(s);
    c.counts.textContent = countsText(s);
    c.revoke.hidden = !this.#canModerate;
    c.revoke.disabled = s.holder === null;
    if (s.thumbnail) paintThumbnail(c.thumb, s.thumbnail);
    this.#times(c, Date.now());
  }

  #times(c: CardParts, now: number): void {
    c.age.textContent = ageText(c.data.createdAt, now);
    c.idle.textContent = idleCountdownText(c.data.idleDeadline, now);
  }

  #tick(): void {
    const now = Date.now();
    for (const c of this.#cards.values()) this.#times(c, now);
  }

  async #revoke(sessionId: string, error: HTMLElement): Promise<void> {
    if (!this.#api) return;
    error.textContent = '';
    try {
      await this.#api.revokeControl(sessionId);
    } catch (err) {
      error.textContent = `Could not revoke: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
}
