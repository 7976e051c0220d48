"""Shared by the screen-fidelity test programs: quiet terminal input, go signals, output.

Each program first prints READY (once its input is quiet: a `g` sent after READY is never
echoed), then waits for a `g` on stdin before each phase, so a test decides when output flows.
"""

import os
import sys
import termios


def quiet_input():
    """No echo and no line editing: a `g` from the driver is read at once and never shown."""
    attrs = termios.tcgetattr(0)
    attrs[3] &= ~(termios.ECHO | termios.ICANON)
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(0, termios.TCSANOW, attrs)


def wait_go():
    """Blocks until a `g` arrives on stdin; exits quietly when stdin closes."""
    while True:
        b = os.read(0, 1)
        if not b:
            sys.exit(0)
        if b == b"g":
            return


def out(data):
    """Writes all of `data` (bytes or str) to the terminal."""
    if isinstance(data, str):
        data = data.encode()
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def marker(name):
    """An OSC 9 notice `attachd-test:NAME` that tests wait for in the byte stream. Terminals
    keep no screen state for it, so it cannot stand in for what a snapshot must carry."""
    out(f"\x1b]9;attachd-test:{name}\x07")


def size():
    """(cols, rows) of the terminal."""
    s = os.get_terminal_size(1)
    return s.columns, s.lines


def idle():
    """Waits (reading stdin, so the session stays quiet) until the session ends."""
    while os.read(0, 1):
        pass


READY = "\x1b]9;attachd-test:ready\x07"


def start():
    """Quiet input, READY, and the first `g`; returns the terminal size at that moment."""
    quiet_input()
    out(READY)
    wait_go()
    return size()
