#!/usr/bin/env python3
"""Runs a screen-fidelity program on a real PTY of COLSxROWS and records all its output.

Usage: record.py --size COLSxROWS --out FILE -- PROGRAM [ARGS...]
Sends the program's go signals (`g`) for both phases, stops it after its `done` marker and
prints {"phase1": offset after the phase-1 marker, "total": bytes recorded}.
"""

import argparse
import fcntl
import json
import os
import pty
import select
import signal
import struct
import sys
import termios
import time

READY = b"\x1b]9;attachd-test:ready\x07"
PHASE1 = b"\x1b]9;attachd-test:phase1\x07"
DONE = b"\x1b]9;attachd-test:done\x07"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("argv", nargs="+")
    args = ap.parse_args()
    cols, rows = (int(v) for v in args.size.split("x"))
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(args.argv[0], args.argv)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    out = bytearray()
    deadline = time.monotonic() + args.timeout

    def read_until(marker):
        while not out.endswith(marker):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                sys.exit(f"record.py: no {marker!r} within {args.timeout}s")
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                out.extend(os.read(fd, 1 << 16))

    # The program sets its terminal up before READY: a `g` sent earlier would be echoed.
    read_until(READY)
    os.write(fd, b"g")
    read_until(PHASE1)
    phase1 = len(out)
    os.write(fd, b"g")
    read_until(DONE)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with open(args.out, "wb") as f:
        f.write(out)
    print(json.dumps({"phase1": phase1, "total": len(out)}))


if __name__ == "__main__":
    main()
