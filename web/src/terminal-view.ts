// The page's terminal. The control holder's xterm fits its container (its size becomes the PTY's);
// everyone else renders at the session's size, scaled to fit, never re-wrapped (SPEC §8). Resets
// and size changes go through xterm's write queue, so they land in order with the output.

import { FitAddon } from '@xterm/addon-fit';
import { type ITerminalOptions, Terminal } from '@xterm/xterm';

import type { TermSize } from './snapshot';
import { placeTerminal } from './scale';

/** CAN aborts any half-parsed escape sequence, then RIS resets the terminal (in band). */
const IN_BAND_RESET = '\x18\x1bc';

export type ViewMode = 'fit' | 'session';

export class TerminalView {
  readonly term: Terminal;
  readonly #fit = new FitAddon();
  readonly #container: HTMLElement;
  #opened = false;
  #mode: ViewMode = 'fit';
  #sessionSize: TermSize | null = null;

  constructor(container: HTMLElement, options: ITerminalOptions) {
    this.#container = container;
    this.term = new Terminal(options);
    this.term.loadAddon(this.#fit);
  }

  get opened(): boolean {
    return this.#opened;
  }

  get mode(): ViewMode {
    return this.#mode;
  }

  /** Open into the container once; re-lay out whenever the container changes size. */
  open(): void {
    if (this.#opened) return;
    this.term.open(this.#container);
    this.#opened = true;
    new ResizeObserver(() => this.layout()).observe(this.#container);
  }

  /** Forget the session (a fresh attach): empty screen, fitted to the container. */
  clear(): void {
    this.#sessionSize = null;
    this.term.reset();
    this.layout();
  }

  /** In order with the output: reset, at `size` when given, then lay out again. */
  reset(size: TermSize | null): void {
    this.term.write(IN_BAND_RESET, () => {
      if (size) {
        this.#sessionSize = size;
        this.term.resize(size.cols, size.rows);
      }
    });
    // A snapshot is written at its own size; the holder re-fits only after the payload.
    this.#afterPending(() => this.layout());
  }

  write(bytes: Uint8Array, rendered: () => void): void {
    this.term.write(bytes, rendered);
  }

  /** The session's PTY size changed (in order with the output). */
  sessionSize(size: TermSize): void {
    this.#afterPending(() => {
      this.#sessionSize = size;
      if (this.#mode === 'session') this.layout();
    });
  }

  /**
   * 'fit' for the control holder, 'session' for everyone else. The session's size itself arrives
   * in band (reset, sessionSize); without one (older servers) 'session' fits like 'fit'.
   */
  setMode(mode: ViewMode): void {
    if (mode === this.#mode) return;
    this.#mode = mode;
    this.layout();
  }

  /** Apply the mode to the current container size. */
  layout(): void {
    if (!this.#opened || this.#container.clientWidth === 0) return;
    const el = this.term.element;
    if (!el) return;
    const size = this.#sessionSize;
    const scaled = this.#mode === 'session' && size !== null;
    this.#container.classList.toggle('scaled', scaled);
    if (!scaled) {
      el.style.transform = '';
      delete el.dataset.scale;
      this.#fit.fit();
      return;
    }
    if (this.term.cols !== size.cols || this.term.rows !== size.rows) this.term.resize(size.cols, size.rows);
    const screen = el.querySelector<HTMLElement>('.xterm-screen');
    const box = { width: screen?.offsetWidth ?? 0, height: screen?.offsetHeight ?? 0 };
    const p = placeTerminal({ width: this.#container.clientWidth, height: this.#container.clientHeight }, box);
    el.style.transformOrigin = '0 0';
    el.style.transform = `translate(${p.x}px, ${p.y}px) scale(${p.scale})`;
    el.dataset.scale = p.scale.toFixed(3);
  }

  /** Run `fn` once xterm has parsed everything written so far. */
  #afterPending(fn: () => void): void {
    this.term.write('', fn);
  }
}
