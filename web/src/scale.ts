// Observers render at the session's size, never re-wrapped (SPEC §8): the terminal keeps its
// cols x rows and is scaled down to fit the container (never up), then centred
// horizontally and kept at the top (letterboxed).

export interface Box {
  readonly width: number;
  readonly height: number;
}

export interface Placement {
  /** CSS scale factor, 0 < scale <= 1. */
  readonly scale: number;
  /** Offsets in px of the scaled terminal's top-left corner inside the container. */
  readonly x: number;
  readonly y: number;
}

export function placeTerminal(container: Box, terminal: Box): Placement {
  if (!(terminal.width > 0 && terminal.height > 0) || !(container.width > 0 && container.height > 0)) {
    return { scale: 1, x: 0, y: 0 };
  }
  const scale = Math.min(1, container.width / terminal.width, container.height / terminal.height);
  const x = Math.max(0, Math.floor((container.width - terminal.width * scale) / 2));
  return { scale, x, y: 0 };
}
