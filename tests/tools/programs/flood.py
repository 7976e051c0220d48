#!/usr/bin/env python3
"""Screen-fidelity program: a flood of coloured lines that ends by drawing a known screen.

Before the flood it sets modes a snapshot must carry (application cursor keys, bracketed
paste, a title). Phase 1 floods `--mb` MiB (default 20), then overwrites the top rows and
leaves the cursor in a known place; phase 2 (optional second `g`) floods `--mb2` MiB more
and draws the same final screen again.
"""

import argparse

from common import idle, marker, out, start, wait_go


def flood(total, cols, seed):
    line_no, sent, batch = seed, 0, []
    while sent < total:
        n = line_no
        text = f"\x1b[3{n % 8}m{n:09d}\x1b[0m {'flood-' * 12}"[: cols + 8]
        line = f"{text}\x1b[{40 + n % 8}m#\x1b[0m\r\n"
        batch.append(line)
        sent += len(line)
        line_no += 1
        if len(batch) == 256:
            out("".join(batch))
            batch = []
    out("".join(batch))
    return line_no


def final_screen(rows, tag):
    out("".join(f"\x1b[{y + 1};1H\x1b[K\x1b[1;3{y % 7 + 1}mfinal {tag} row {y}\x1b[0m" for y in range(rows // 3)))
    out(f"\x1b[{rows // 2};20H")


ap = argparse.ArgumentParser()
ap.add_argument("--mb", type=float, default=20)
ap.add_argument("--mb2", type=float, default=0)
args = ap.parse_args()
cols, rows = start()
out("\x1b[?1h\x1b[?2004h\x1b]2;flood\x07")
n = flood(int(args.mb * (1 << 20)), cols - 12, 0)
final_screen(rows, "one")
marker("phase1")
if args.mb2:
    wait_go()
    flood(int(args.mb2 * (1 << 20)), cols - 12, n)
    final_screen(rows, "two")
marker("done")
idle()
