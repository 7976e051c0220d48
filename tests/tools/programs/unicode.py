#!/usr/bin/env python3
"""Screen-fidelity program: UTF-8 wide (CJK, Hangul, fullwidth) and combining characters.

Phase 1: rows of wide characters, combining accents on Latin letters (precomposed ones with
`--precomposed`) and a coloured wide cell, wide characters never split at the right margin. Phase 2: wide characters overwritten
by narrow ones and the reverse, then idle.
"""

import argparse
import unicodedata

from common import idle, marker, out, start, wait_go

WIDE = "中文字符表示测试漢字한국어시험ＡＢＣＤＥＦ"
COMBINING = ["e\u0301", "a\u0308", "o\u0302", "n\u0303", "x\u0301", "u\u0308\u0301"]

ap = argparse.ArgumentParser()
ap.add_argument("--precomposed", action="store_true")
args = ap.parse_args()
if args.precomposed:
    COMBINING = [unicodedata.normalize("NFC", c) for c in COMBINING if c[0] != "x"]
cols, rows = start()
out("\x1b[H\x1b[2J")
for y in range(rows - 2):
    text = "".join(WIDE[(y + k) % len(WIDE)] for k in range((cols - 4) // 2))
    mark = COMBINING[y % len(COMBINING)]
    out(f"\x1b[{y + 1};1H{mark}{mark} \x1b[3{y % 7 + 1}m{text[: (cols - 6) // 2]}\x1b[0m")
out(f"\x1b[{rows - 1};1H\x1b[1;41m漢\x1b[0m café naïve Ünïcödé\x1b[{rows - 1};40H한글")
marker("phase1")
wait_go()
out(f"\x1b[1;6Hab\x1b[2;8Hxy\x1b[3;6H中\x1b[4;8H文\x1b[{rows - 1};4H字")
out(f"\x1b[{rows};1H末尾 e\u0301 done")
marker("done")
idle()
