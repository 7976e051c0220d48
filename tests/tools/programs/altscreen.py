#!/usr/bin/env python3
"""Screen-fidelity program: a full-screen program on the alternate screen, in colour.

Phase 1: lines on the normal screen, then the alternate screen (1049) with 16, 256 and
true colours and every attribute, application cursor keys and keypad, bracketed paste, mouse
reporting, a hidden cursor and a title. Phase 2: a few cells change, then idle.
"""

from common import idle, marker, out, start, wait_go

cols, rows = start()
out("".join(f"normal screen line {i}\r\n" for i in range(rows + 5)))
out("\x1b[?1049h\x1b[H\x1b[2J\x1b[?1h\x1b=\x1b[?2004h\x1b[?1000h\x1b[?1006h\x1b[?25l")
cells = []
for y in range(rows - 1):
    cells.append(f"\x1b[{y + 1};1H")
    for x in range(0, cols - 2, 2):
        n = y * cols + x
        kind = y % 4
        if kind == 0:
            sgr = f"{30 + n % 8};{40 + (n // 8) % 8}"
        elif kind == 1:
            sgr = f"38;5;{n % 256};48;5;{(n * 7) % 256}"
        elif kind == 2:
            sgr = f"38;2;{n % 256};{(n * 3) % 256};{(n * 5) % 256};{90 + n % 8}"
        else:
            sgr = ["1", "3", "4", "7", "9", "1;4", "3;7", "2"][n % 8]
        cells.append(f"\x1b[0;{sgr}m{chr(0x41 + n % 26)}{chr(0x61 + n % 26)}")
    cells.append("\x1b[0m")
out("".join(cells))
out(f"\x1b[{rows};1H\x1b[44;97m{' F1 help  F2 save  F10 quit'.ljust(cols - 1)}\x1b[0m")
out("\x1b]2;an editor\x07\x1b[3;7H\x1b[1;33m")
marker("phase1")
wait_go()
out("\x1b[1;1HZ\x1b[2;2H\x1b[0;35;46mQ\x1b[10;20H")
marker("done")
idle()
