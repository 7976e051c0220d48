#!/usr/bin/env python3
"""Keystroke echo measured with a Python `websockets` client: the kind of client the issue's
quoted ttyd, terminado and wetty figures come from, so attachd can be set beside them.

Same method as `attachd-bench echo` (0 observers): put the terminal in `stty raw -echo; cat`,
then send one byte per sample and time its return, with a 1 ms pause between samples.
Loopback only. Prints one JSON record; `--md FILE` appends a table row.
"""

import argparse
import asyncio
import json
import os
import time
import urllib.parse
import urllib.request

from websockets.asyncio.client import connect


def loopback_only(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if not host.startswith("127."):
        raise SystemExit(f"refusing non-loopback target {url}")


def api(base: str, token: str, method: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


class Terminal:
    """One driver connection speaking attachd's `attach.v1` or terminado's JSON messages."""

    def __init__(self, ws, proto: str):
        self.ws, self.proto = ws, proto

    async def send(self, data: bytes) -> None:
        if self.proto != "terminado":
            await self.ws.send(data)
        else:
            await self.ws.send(json.dumps(["stdin", data.decode()]))

    async def output(self) -> bytes:
        """The next chunk of terminal output (other messages are skipped)."""
        while True:
            msg = await self.ws.recv()
            if self.proto != "terminado":
                if isinstance(msg, bytes):
                    return msg
            else:
                m = json.loads(msg)
                if m[0] == "stdout":
                    return m[1].encode()

    async def ready(self) -> None:
        while True:
            msg = await self.ws.recv()
            if isinstance(msg, str) and (
                msg.startswith('{"type":"hello"') or msg.startswith('["setup"')
            ):
                return

    async def drain(self, quiet: float) -> None:
        try:
            while True:
                await asyncio.wait_for(self.output(), quiet)
        except asyncio.TimeoutError:
            pass

    async def until(self, key: bytes, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while key not in await self.output():
                    pass
            return True
        except TimeoutError:
            return False


def pct(sorted_us: list, p: float) -> int:
    return sorted_us[min(len(sorted_us) - 1, int(p / 100 * len(sorted_us)))]


async def run(a) -> dict:
    loopback_only(a.target)
    ws_base = "ws://" + urllib.parse.urlsplit(a.target).netloc
    kwargs = {"compression": None, "max_size": None, "ping_interval": None}
    if a.proto == "attachd":
        token = os.environ["ATTACHD_BENCH_TOKEN"]
        sid = api(a.target, token, "POST", "/api/v1/sessions", {"name": "py-echo"})["id"]
        ticket = api(
            a.target,
            token,
            "POST",
            f"/api/v1/sessions/{sid}/attach-tickets",
            {"role": "driver", "delivery": "body"},
        )["ticket"]
        url = f"{ws_base}/api/v1/sessions/{sid}/attach"
        kwargs.update(
            additional_headers={"Authorization": f"Bearer {ticket}"}, subprotocols=["attach.v1"]
        )
    elif a.proto == "floor":
        url = f"{ws_base}/floor"
    else:
        url = f"{ws_base}/websocket/pyecho{os.getpid()}"
    async with connect(url, **kwargs) as ws:
        t = Terminal(ws, a.proto)
        await t.ready()
        await t.drain(0.3)
        await t.send(b"stty raw -echo; cat\n")
        await asyncio.sleep(0.3)
        await t.drain(0.2)
        for _ in range(5):
            await t.send(b"#")
            if await t.until(b"#", 2.0):
                break
        else:
            raise SystemExit("the terminal never echoed through cat")
        await t.drain(0.1)
        rtts, lost = [], 0
        for i in range(a.warmup + a.samples):
            key = bytes([ord("a") + i % 26])
            t0 = time.perf_counter_ns()
            await t.send(key)
            if await t.until(key, 2.0):
                if i >= a.warmup:
                    rtts.append((time.perf_counter_ns() - t0) // 1000)
            else:
                lost += 1
                if lost >= 10:
                    break
            await asyncio.sleep(a.gap_us / 1e6)
        if a.proto != "terminado":
            await t.send(b"\x04")
    rtts.sort()
    return {
        "scenario": "echo",
        "label": f"{a.proto} (python websockets)",
        "params": {"samples": a.samples, "warmup": a.warmup, "gap_us": a.gap_us},
        "results": {
            "rtt_us": {
                "p50": pct(rtts, 50),
                "p99": pct(rtts, 99),
                "p99_9": pct(rtts, 99.9),
                "n": len(rtts),
            }
            if rtts
            else None,
            "lost_samples": lost,
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--proto", choices=["attachd", "terminado", "floor"], default="attachd")
    p.add_argument("--target", required=True, help="http://127.0.0.1:PORT")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--gap-us", type=int, default=1000)
    p.add_argument("--out", help="append the JSON record to this file")
    p.add_argument("--md", help="append a markdown table row to this file")
    a = p.parse_args()
    rec = asyncio.run(run(a))
    line = json.dumps(rec)
    print(line)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")
    if a.md:
        r = rec["results"]["rtt_us"] or {"p50": "-", "p99": "-", "p99_9": "-"}
        with open(a.md, "a") as f:
            f.write(
                f"| echo | {rec['label']} | samples={a.samples} gap_us={a.gap_us} | "
                f"p50 {r['p50']} µs, p99 {r['p99']} µs, p99.9 {r['p99_9']} µs; "
                f"lost {rec['results']['lost_samples']} |\n"
            )


if __name__ == "__main__":
    main()
