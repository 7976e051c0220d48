#!/usr/bin/env python3
"""Independent screen judge for attachd's terminal state (SPEC section 8), built on pyte.

It shares no code with the server's emulator: byte streams go into pyte screens, and two
rendered screens are compared cell by cell.

Usage:
  screen.py compare --a-size COLSxROWS --a FILE [FILE...] --b-size COLSxROWS --b FILE [FILE...]
  screen.py render --size COLSxROWS FILE [FILE...]

Each side's files are concatenated and fed, in order, into one fresh terminal of its size: for
a late joiner that is the `snapshot` payload followed by the live bytes it received. `compare`
prints {"equal", "rows_equal", "rows", "diff_count", "diffs": [first 20]} and exits 0 when
the screens are equal, 1 when they differ, 2 on bad usage or when pyte is missing.

Compared: every cell's character (wide characters, their stub cell, combining marks), fg, bg,
bold, italics, underscore, reverse, strikethrough; the cursor (position, visibility) and its
pen (the attributes the next character gets); the terminal modes (application cursor keys,
bracketed paste, mouse reporting, autowrap, ...); the title; which screen is shown, and the
normal screen kept under the alternate one. Colours are compared as palette entries (SGR 31
equals SGR 38;5;1), not as the sequence that chose them. pyte has no alternate screen, so modes 47, 1047
and 1049 are emulated here as xterm defines them; ESC = / ESC > (application keypad) are
recorded as a mode too.
"""

import argparse
import json
import sys
from collections import defaultdict

PYTE_VERSION = "0.8.2"
PYTE_INSTALL = f"pip install pyte=={PYTE_VERSION}"

try:
    from importlib.metadata import version

    import pyte
    from pyte import graphics
    from pyte.screens import StaticDefaultDict

    if version("pyte") != PYTE_VERSION:
        raise ImportError(f"pyte {version('pyte')} is installed")
except ImportError as why:
    print(f"screen.py needs pyte {PYTE_VERSION} ({why}): {PYTE_INSTALL}", file=sys.stderr)
    sys.exit(2)

ATTRS = ("fg", "bg", "bold", "italics", "underscore", "reverse", "strikethrough")
ALT_MODES = (47, 1047, 1049)
# Application keypad (DECKPAM/DECKPNM) has no CSI mode number; it is kept beside the modes.
KEYPAD_APP = "keypad_application"
MAX_DIFFS = 20


def _palette_names():
    """pyte's colour names (SGR 30-37, 90-97 and their backgrounds) to palette hex values."""
    names = {}
    for table, base, first in (
        (graphics.FG_ANSI, 30, 0),
        (graphics.BG_ANSI, 40, 0),
        (graphics.FG_AIXTERM, 90, 8),
        (graphics.BG_AIXTERM, 100, 8),
    ):
        for code, name in table.items():
            if name != "default" and 0 <= code - base < 8:
                names[name] = graphics.FG_BG_256[first + code - base]
    return names


# SGR 31 and SGR 38;5;1 select the same palette entry: pyte names the first and spells the
# second in hex, so names are compared as the palette's hex value.
PALETTE = _palette_names()


class JudgeScreen(pyte.Screen):
    """A pyte screen with xterm's alternate screen and the application keypad flag."""

    def __init__(self, columns, lines):
        super().__init__(columns, lines)
        self.alt_active = False
        self.keypad_app = False
        self.normal_buffer = None
        self.alt_buffer = self._blank_buffer()

    def _blank_buffer(self):
        return defaultdict(lambda: StaticDefaultDict(self.default_char))

    def reset(self):
        super().reset()
        self.alt_active = False
        self.keypad_app = False
        self.normal_buffer = None
        self.alt_buffer = self._blank_buffer()

    def keypad_application(self):
        self.keypad_app = True

    def keypad_numeric(self):
        self.keypad_app = False

    def set_mode(self, *modes, **kwargs):
        super().set_mode(*self._switch_alt(modes, kwargs, self._enter_alt), **kwargs)

    def reset_mode(self, *modes, **kwargs):
        super().reset_mode(*self._switch_alt(modes, kwargs, self._leave_alt), **kwargs)

    @staticmethod
    def _switch_alt(modes, kwargs, switch):
        """Runs `switch` for each private alternate-screen mode; returns the other modes."""
        if not kwargs.get("private"):
            return modes
        for mode in modes:
            if mode in ALT_MODES:
                switch(mode)
        return tuple(m for m in modes if m not in ALT_MODES)

    def _enter_alt(self, mode):
        if mode == 1049:
            self.save_cursor()
        if self.alt_active:
            if mode == 1049:
                self.alt_buffer = self._blank_buffer()
                self.buffer = self.alt_buffer
            return
        if mode == 1049:
            self.alt_buffer = self._blank_buffer()
        self.normal_buffer = self.buffer
        self.buffer = self.alt_buffer
        self.alt_active = True
        self.dirty.update(range(self.lines))

    def _leave_alt(self, mode):
        if self.alt_active:
            if mode == 1047:
                self.alt_buffer.clear()
            self.alt_buffer = self.buffer
            self.buffer = self.normal_buffer
            self.normal_buffer = None
            self.alt_active = False
            self.dirty.update(range(self.lines))
        if mode == 1049:
            self.restore_cursor()


class JudgeStream(pyte.ByteStream):
    """pyte's byte stream plus ESC = and ESC > (application / numeric keypad)."""

    escape = dict(pyte.ByteStream.escape, **{"=": "keypad_application", ">": "keypad_numeric"})


def parse_size(text):
    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not COLSxROWS")
    if not (1 <= cols <= 1000 and 1 <= rows <= 1000):
        raise argparse.ArgumentTypeError(f"size {text!r} is outside 1..1000")
    return cols, rows


def feed_files(size, paths):
    """A fresh terminal of `size` (cols, rows) fed every file of `paths` in order."""
    screen = JudgeScreen(*size)
    stream = JudgeStream(screen)
    for path in paths:
        with open(path, "rb") as f:
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                stream.feed(chunk)
    return screen


def cell(ch):
    """One cell as a plain dict: its text and every compared attribute."""
    out = {"char": ch.data}
    for attr in ATTRS:
        out[attr] = getattr(ch, attr)
    for attr in ("fg", "bg"):
        out[attr] = PALETTE.get(out[attr], out[attr])
    return out


def row_cells(screen, buffer, y):
    line = buffer[y]
    return [cell(line[x]) for x in range(screen.columns)]


def row_text(cells):
    return "".join(c["char"] for c in cells)


def mode_names(screen):
    """The set modes as readable names: `?N` for private ones, `N` for ANSI ones."""
    names = set()
    for mode in screen.mode:
        names.add(f"?{mode >> 5}" if mode >= 32 else str(mode))
    if screen.keypad_app:
        names.add(KEYPAD_APP)
    return sorted(names)


def pen(screen):
    out = cell(screen.cursor.attrs)
    del out["char"]
    return out


def state(screen):
    """Everything but the cells: what the comparison reports as single differences."""
    return {
        "size": [screen.columns, screen.lines],
        "cursor": {
            "x": screen.cursor.x,
            "y": screen.cursor.y,
            "hidden": screen.cursor.hidden,
        },
        "pen": pen(screen),
        "modes": mode_names(screen),
        "title": screen.title,
        "alternate_screen": screen.alt_active,
    }


def compare_buffers(a, b, buf_a, buf_b, label, diffs):
    """Appends cell differences of one buffer pair; returns how many rows are equal."""
    rows_equal = 0
    for y in range(max(a.lines, b.lines)):
        ra = row_cells(a, buf_a, y) if y < a.lines else []
        rb = row_cells(b, buf_b, y) if y < b.lines else []
        if ra == rb:
            rows_equal += 1
            continue
        for x in range(max(len(ra), len(rb))):
            ca = ra[x] if x < len(ra) else None
            cb = rb[x] if x < len(rb) else None
            if ca == cb:
                continue
            fields = [k for k in ("char",) + ATTRS if (ca or {}).get(k) != (cb or {}).get(k)]
            diffs.append({
                "what": "cell",
                "screen": label,
                "row": y,
                "col": x,
                "fields": fields,
                "a": ca,
                "b": cb,
                "a_row": row_text(ra),
                "b_row": row_text(rb),
            })
    return rows_equal


def compare(a, b):
    """The report comparing screen `a` with screen `b`."""
    diffs = []
    sa, sb = state(a), state(b)
    for key in sa:
        if sa[key] != sb[key]:
            diffs.append({"what": key, "a": sa[key], "b": sb[key]})
    rows_equal = compare_buffers(a, b, a.buffer, b.buffer, "shown", diffs)
    if a.alt_active and b.alt_active:
        compare_buffers(a, b, a.normal_buffer, b.normal_buffer, "normal_under_alternate", diffs)
    return {
        "equal": not diffs,
        "rows_equal": rows_equal,
        "rows": max(a.lines, b.lines),
        "diff_count": len(diffs),
        "diffs": diffs[:MAX_DIFFS],
        "a_state": sa,
        "b_state": sb,
    }


def render(screen):
    out = state(screen)
    out["display"] = [row_text(row_cells(screen, screen.buffer, y)) for y in range(screen.lines)]
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    cmp_p = sub.add_parser("compare", help="compare two rendered screens cell by cell")
    cmp_p.add_argument("--a-size", type=parse_size, required=True)
    cmp_p.add_argument("--a", nargs="+", required=True, metavar="FILE")
    cmp_p.add_argument("--b-size", type=parse_size, required=True)
    cmp_p.add_argument("--b", nargs="+", required=True, metavar="FILE")
    ren_p = sub.add_parser("render", help="print one rendered screen")
    ren_p.add_argument("--size", type=parse_size, required=True)
    ren_p.add_argument("files", nargs="+", metavar="FILE")
    args = ap.parse_args(argv)
    if args.cmd == "render":
        print(json.dumps(render(feed_files(args.size, args.files)), ensure_ascii=False))
        return 0
    report = compare(feed_files(args.a_size, args.a), feed_files(args.b_size, args.b))
    print(json.dumps(report, ensure_ascii=False))
    return 0 if report["equal"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
