#!/usr/bin/env python3
"""Screen-fidelity program: a fixed header and footer around a scrolling region (DECSTBM).

Phase 1: header, footer, a scroll region between them, and lines scrolled inside it (with
insert/delete line and reverse index). Phase 2: more lines inside the region, which only
stay inside it when the region itself was carried over, then idle.
"""

from common import idle, marker, out, start, wait_go


def region_lines(first, count):
    return "".join(f"\r\n\x1b[3{n % 7 + 1}mregion line {n:05d}\x1b[0m" for n in range(first, first + count))


cols, rows = start()
out("\x1b[H\x1b[2J\x1b[1;44m" + " header: top stays put".ljust(cols) + "\x1b[0m")
out("\x1b[2;1H\x1b[4m" + "second header line".ljust(cols - 1) + "\x1b[0m")
out(f"\x1b[{rows - 1};1H\x1b[7m" + " footer one".ljust(cols - 1) + "\x1b[0m")
out(f"\x1b[{rows};1H\x1b[1m" + " footer two".ljust(cols - 1) + "\x1b[0m")
out(f"\x1b[3;{rows - 2}r\x1b[{rows - 2};1H")
out(region_lines(0, 500))
out(f"\x1b[3;1H\x1bM\x1bMreverse-indexed\x1b[{rows // 2};1H\x1b[2Linserted\x1b[{rows // 2 + 4};1H\x1b[Mdeleted")
out(f"\x1b[{rows - 2};1H")
marker("phase1")
wait_go()
out(region_lines(500, 7))
marker("done")
idle()
