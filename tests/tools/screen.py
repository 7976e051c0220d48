#!/usr/bin/env python3
"""Independent screen judge for attachd's terminal state (SPEC section 8), built on pyte.

It shares no code with the server's emulator: byte streams go into pyte screens, and two
rendered screens are compared cell by cell.

Usage:
  screen.py compare [--history N] [--b-plain] --a-size COLSxROWS --a FILE [FILE...]
                                              --b-size COLSxROWS --b FILE [FILE...]
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
equals SGR 38;5;1), not as the sequence that chose them. With `--history N` each terminal
keeps the last N lines scrolled off the normal screen (as xterm does: only from a scroll
region that starts at the top line, never from the alternate screen; CSI 3 J clears them)
and the two histories are compared line by line from the newest.

pyte erases with every attribute of the pen (a reversed pen erases to reversed cells), its ED
skips cells never written and treats ED 3 as ED 2; xterm erases every cell with the background
colour only and ED 3 erases the history alone, and so does the judge.

pyte also lacks two ECMA-48 forms that xterm and xterm.js accept, so they are emulated as xterm
does: REP (CSI Ps b, repeat the last graphic character) and SGR sub-parameters separated by
colons (38:5:n, 38:2::r:g:b, 4:3), which are rewritten to their semicolon forms. With
`--b-plain` side b is fed without those two (as a terminal that lacks them, e.g. macOS
Terminal or an older VTE, reads it). pyte has no alternate screen, so modes 47, 1047
and 1049 are emulated here as xterm defines them; ESC = / ESC > (application keypad) are
recorded as a mode too.
"""

import argparse
import json
import re
import sys
from collections import defaultdict, deque

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
    """A pyte screen with xterm's alternate screen, REP and the application keypad flag."""

    def __init__(self, columns, lines, history=0):
        self.history = deque(maxlen=history)
        super().__init__(columns, lines)
        self.last_graphic = ""
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

    def index(self):
        top, bottom = self.margins or (0, self.lines - 1)
        if self.cursor.y == bottom and top == 0 and not self.alt_active:
            self.history.append(self.buffer[top])
        super().index()

    def _erase_with_background(self, erase, *args, **kwargs):
        """Runs a pyte erase with a pen that keeps only the background, as xterm erases."""
        pen = self.cursor.attrs
        self.cursor.attrs = self.default_char._replace(bg=pen.bg)
        try:
            erase(*args, **kwargs)
        finally:
            self.cursor.attrs = pen

    def erase_in_display(self, how=0, *args, **kwargs):
        if how == 3:
            self.history.clear()
            return
        rows = {0: range(self.cursor.y + 1, self.lines), 1: range(self.cursor.y)}.get(
            how, range(self.lines)
        )
        blank = self.default_char._replace(bg=self.cursor.attrs.bg)
        for y in rows:
            line = self.buffer[y]
            for x in range(self.columns):
                line[x] = blank
        self.dirty.update(rows)
        if how in (0, 1):
            self.erase_in_line(how)

    def erase_in_line(self, how=0, *args, **kwargs):
        self._erase_with_background(super().erase_in_line, how, *args, **kwargs)

    def erase_characters(self, count=None):
        self._erase_with_background(super().erase_characters, count)

    def draw(self, data):
        super().draw(data)
        if data:
            self.last_graphic = data[-1]

    def repeat_last(self, count=1, *args, **kwargs):
        """REP: the last graphic character again, `count` (at least 1) times."""
        if self.last_graphic and not kwargs.get("private"):
            self.draw(self.last_graphic * max(count, 1))

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
    """pyte's byte stream plus ESC = and ESC > (application / numeric keypad) and REP."""

    escape = dict(pyte.ByteStream.escape, **{"=": "keypad_application", ">": "keypad_numeric"})
    csi = dict(pyte.ByteStream.csi, b="repeat_last")


class PlainStream(JudgeStream):
    """A stream of a terminal without REP (which it ignores)."""

    csi = {k: v for k, v in JudgeStream.csi.items() if k != "b"}


COLON_SGR = re.compile(rb"\x1b\[([0-9;]*:[0-9;:]*)m")


def _semicolon_param(group):
    """One colon-separated SGR parameter group in the semicolon form pyte reads."""
    parts = group.split(b":")
    if parts[0] in (b"38", b"48", b"58") and len(parts) > 1:
        if parts[1] == b"5" and len(parts) >= 3:
            values = [parts[2]]
        elif parts[1] == b"2" and len(parts) >= 5:
            values = parts[-3:]  # 38:2:r:g:b or 38:2:colourspace:r:g:b
        else:
            return b""
        if parts[0] == b"58":
            return b""  # underline colour: pyte keeps none
        return b";".join([parts[0], parts[1]] + [v or b"0" for v in values])
    if parts[0] == b"4" and len(parts) > 1:
        return b"24" if parts[1] == b"0" else b"4"  # underline styles: on or off
    return parts[0]


def semicolon_sgr(data):
    """`data` with every colon-form SGR rewritten to semicolons (xterm reads both)."""

    def rewrite(m):
        groups = [_semicolon_param(g) for g in m.group(1).split(b";")]
        return b"\x1b[" + b";".join(g for g in groups if g) + b"m"

    return COLON_SGR.sub(rewrite, data)


def parse_size(text):
    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not COLSxROWS")
    if not (1 <= cols <= 1000 and 1 <= rows <= 1000):
        raise argparse.ArgumentTypeError(f"size {text!r} is outside 1..1000")
    return cols, rows


def feed_files(size, paths, history=0, plain=False):
    """A fresh terminal of `size` (cols, rows) fed every file of `paths` in order; `plain`:
    one that reads neither REP nor colon SGR."""
    screen = JudgeScreen(*size, history=history)
    stream = (PlainStream if plain else JudgeStream)(screen)
    data = b""
    for path in paths:
        with open(path, "rb") as f:
            data += f.read()
    if not plain:
        data = semicolon_sgr(data)
    for at in range(0, len(data), 1 << 16):
        stream.feed(data[at : at + (1 << 16)])
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
    return line_cells(screen, buffer[y])


def line_cells(screen, line):
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


def compare_history(a, b, diffs):
    """History lines, newest first (`row` -1 is the line just above the screen)."""
    if len(a.history) != len(b.history):
        diffs.append({"what": "history_lines", "a": len(a.history), "b": len(b.history)})
    for back in range(1, min(len(a.history), len(b.history)) + 1):
        ra, rb = line_cells(a, a.history[-back]), line_cells(b, b.history[-back])
        if ra != rb:
            cols = [x for x in range(min(len(ra), len(rb))) if ra[x] != rb[x]]
            diffs.append({
                "what": "history",
                "row": -back,
                "cols": cols[:10],
                "a_row": row_text(ra),
                "b_row": row_text(rb),
            })


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
    compare_history(a, b, diffs)
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
    cmp_p.add_argument("--history", type=int, default=0, metavar="N")
    cmp_p.add_argument("--b-plain", action="store_true", help="side b lacks REP and colon SGR")
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
    report = compare(
        feed_files(args.a_size, args.a, args.history),
        feed_files(args.b_size, args.b, args.history, plain=args.b_plain),
    )
    print(json.dumps(report, ensure_ascii=False))
    return 0 if report["equal"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
