// The recordings page of a session: its files (start, size, whether they verify against the
// audit chain) and a player on xterm.js. Files are fetched with the token in the header and
// handed to the player or to a download as a Blob: no token or ticket ever goes in a URL.

import { type ApiClient, type RecordingSummary } from './api';
import { clockText, parseCast } from './cast';
import { Player, SPEEDS } from './player';
import { TerminalView } from './terminal-view';

export interface RecordingsElements {
  panel: HTMLElement;
  session: HTMLElement;
  back: HTMLButtonElement;
  list: HTMLUListElement;
  empty: HTMLElement;
  error: HTMLElement;
  player: HTMLElement;
  play: HTMLButtonElement;
  seek: HTMLInputElement;
  time: HTMLElement;
  speed: HTMLSelectElement;
  skipIdle: HTMLInputElement;
  download: HTMLButtonElement;
  terminal: HTMLElement;
}

const SEEK_STEPS = 1000;

function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export class RecordingsUi {
  readonly #el: RecordingsElements;
  readonly #api: () => ApiClient | null;
  readonly #errorText: (err: unknown) => string;
  readonly #view: TerminalView;
  #sessionId: string | null = null;
  #player: Player | null = null;
  #blob: { file: string; blob: Blob } | null = null;

  constructor(el: RecordingsElements, api: () => ApiClient | null, errorText: (err: unknown) => string) {
    this.#el = el;
    this.#api = api;
    this.#errorText = errorText;
    this.#view = new TerminalView(el.terminal, {
      disableStdin: true,
      cursorBlink: false,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
      fontSize: 14,
      scrollback: 5000,
    });
    this.#view.setMode('session');
    el.speed.replaceChildren(
      ...SPEEDS.map((s) => {
        const o = document.createElement('option');
        o.value = String(s);
        o.textContent = `${s}×`;
        o.selected = s === 1;
        return o;
      }),
    );
    el.play.addEventListener('click', () => this.#player?.toggle());
    el.seek.addEventListener('input', () => {
      const p = this.#player;
      if (p) p.seek((Number(el.seek.value) / SEEK_STEPS) * p.duration);
    });
    el.speed.addEventListener('change', () => this.#player?.setSpeed(Number(el.speed.value)));
    el.skipIdle.addEventListener('change', () => this.#player?.setSkipIdle(el.skipIdle.checked));
    el.download.addEventListener('click', () => this.#download());
  }

  /** Shows the recordings of `sessionId`. */
  async show(sessionId: string): Promise<void> {
    this.stop();
    this.#sessionId = sessionId;
    this.#el.session.textContent = sessionId;
    this.#el.panel.hidden = false;
    this.#el.player.hidden = true;
    this.#el.error.textContent = '';
    this.#el.list.replaceChildren();
    const api = this.#api();
    if (!api) return;
    try {
      const list = await api.listRecordings(sessionId);
      this.#el.list.replaceChildren(...list.map((r) => this.#item(r)));
      this.#el.empty.hidden = list.length > 0;
    } catch (err) {
      this.#el.error.textContent = `Could not list recordings: ${this.#errorText(err)}`;
    }
  }

  /** Stops playing and hides the page. */
  stop(): void {
    this.#player?.pause();
    this.#player = null;
    this.#blob = null;
    this.#el.panel.hidden = true;
  }

  #item(r: RecordingSummary): HTMLLIElement {
    const li = document.createElement('li');
    li.dataset.testid = 'recording';
    li.dataset.file = r.file;
    const name = document.createElement('code');
    name.textContent = r.file;
    const info = document.createElement('span');
    info.className = 'muted';
    info.textContent = [r.startedAt, sizeText(r.bytes)].filter(Boolean).join(' · ');
    const badge = document.createElement('span');
    badge.className = r.verified ? 'badge ok' : 'badge warn';
    badge.dataset.testid = 'verified';
    badge.textContent = r.verified ? 'verified' : 'not verified';
    const play = document.createElement('button');
    play.type = 'button';
    play.dataset.testid = 'play-recording';
    play.textContent = 'Play';
    play.addEventListener('click', () => void this.#open(r.file));
    li.append(name, info, badge, play);
    return li;
  }

  async #open(file: string): Promise<void> {
    const api = this.#api();
    const sessionId = this.#sessionId;
    if (!api || !sessionId) return;
    this.#player?.pause();
    this.#el.error.textContent = '';
    try {
      const blob = await api.fetchRecording(sessionId, file);
      const cast = parseCast(await blob.text());
      this.#blob = { file, blob };
      this.#el.player.hidden = false;
      this.#view.open();
      const view = this.#view;
      const player = new Player(
        cast,
        {
          reset: (cols, rows) => view.reset({ cols, rows }),
          write: (data) => view.term.write(data),
          resize: (cols, rows) => view.sessionSize({ cols, rows }),
        },
        {
          now: () => performance.now(),
          setTimer: (fn, ms) => window.setTimeout(fn, ms),
          clearTimer: (h) => window.clearTimeout(h as number),
        },
        this.#el.skipIdle.checked,
      );
      player.setSpeed(Number(this.#el.speed.value));
      player.onChange = () => this.#render();
      this.#player = player;
      this.#el.player.dataset.file = file;
      this.#render();
      player.play();
    } catch (err) {
      this.#el.error.textContent = `Could not play ${file}: ${this.#errorText(err)}`;
    }
  }

  #render(): void {
    const p = this.#player;
    if (!p) return;
    this.#el.play.textContent = p.playing ? 'Pause' : 'Play';
    this.#el.player.dataset.state = p.playing ? 'playing' : p.position >= p.duration ? 'ended' : 'paused';
    this.#el.time.textContent = `${clockText(p.position)} / ${clockText(p.duration)}`;
    this.#el.seek.value = String(p.duration > 0 ? Math.round((p.position / p.duration) * SEEK_STEPS) : 0);
  }

  #download(): void {
    const b = this.#blob;
    if (!b) return;
    const url = URL.createObjectURL(b.blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = b.file;
    a.click();
    window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
