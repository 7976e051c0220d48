#!/usr/bin/env python3
"""Screen-fidelity program: draws a full screen once, then rewrites only its status line.

Phase 1 (first `g`): the screen, then about `--kb` KiB (default 200) of status-line updates.
Phase 2 (second `g`): a few more updates and the cursor left mid-screen, then idle.
"""

import argparse

from common import idle, marker, out, start, wait_go


def status(i, cols, rows):
    text = f" update {i:07d} | load {i % 97:02d}.{i % 10} | tasks {i % 500:03d} "
    return f"\x1b[{rows};1H\x1b[7m{text[: cols - 1].ljust(cols - 1)}\x1b[0m"


ap = argparse.ArgumentParser()
ap.add_argument("--kb", type=int, default=200)
args = ap.parse_args()
cols, rows = start()
screen = ["\x1b[H\x1b[2J"]
for y in range(1, rows):
    colour = 31 + y % 7
    text = f"row {y:02d} \x1b[{colour}m{'drawn once ' * 8}"[: cols - 1]
    screen.append(f"\x1b[{y};1H\x1b[1m{y:02d}\x1b[0m {text}\x1b[0m")
out("".join(screen))
i, sent, batch = 0, 0, []
while sent < args.kb * 1024:
    s = status(i, cols, rows)
    batch.append(s)
    sent += len(s)
    i += 1
    if len(batch) == 64:
        out("".join(batch))
        batch = []
out("".join(batch))
marker("phase1")
wait_go()
out("".join(status(i + k, cols, rows) for k in range(10)))
out("\x1b[5;10H")
marker("done")
idle()
