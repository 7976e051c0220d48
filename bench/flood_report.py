#!/usr/bin/env python3
"""Turns bench/flood.sh's records (JSON lines: one per client process, then the server's health)
into bench/results/flood.md: a row per client process and the run's totals, where an observer
counts as on the final screen only if its screen's digest is the driver's."""
import json
import sys


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main():
    path, machine = sys.argv[1], sys.argv[2]
    recs = [json.loads(line) for line in open(path) if line.strip()]
    clients = [r for r in recs if r.get("scenario") == "crowd-flood"]
    server = next((r for r in recs if r.get("label") == "flood-server"), {})
    print(f"# attachd crowd flood\n\nMachine: {machine}\n")
    print(row(["client", "observers attached", "attach failed", "ended on the final screen",
               "same attributes", "resyncs (observers)", "MB delivered", "closed by server",
               "client RSS peak MiB", "KiB/observer"]))
    print(row(["---"] * 10))
    driver = None
    for r in clients:
        x = r["results"]
        if x.get("driver"):
            driver = x["driver"]
        rss = x.get("client_rss_kib") or {}
        peak = rss.get("peak")
        print(row([r["label"], x["observers_attached"], x["ramp"]["failed"],
                   x["on_final_screen"], x["same_attributes"],
                   f'{x["resyncs"]["total"]} ({x["resyncs"]["observers_resynced"]})',
                   round(x["bytes_delivered"] / 1e6, 1), x["closed_by_server"] or "",
                   round(peak / 1024, 1) if peak else "", rss.get("per_observer_attached")]))
    if driver is None:
        print("\nNo client drove the session: nothing to judge against.")
        return
    digest = driver["screen_digest"]
    attached = sum(r["results"]["observers_attached"] for r in clients)
    on_screen = sum(r["results"]["screen_digests"].get(digest, 0) for r in clients)
    resyncs = sum(r["results"]["resyncs"]["total"] for r in clients)
    delivered = sum(r["results"]["bytes_delivered"] for r in clients)
    lasts = [r["results"]["final_screen_unix_ms"]["last"] for r in clients]
    lasts = [t for t in lasts if t is not None]
    start = driver.get("flood_start_unix_ms")
    last_ms = max(lasts) - start if lasts and start else None
    peaks = [r["results"].get("server_rss_kib_peak") or 0 for r in clients]
    cpu = [(r["results"].get("cpu_after_ramp") or {}).get("server_cpu_percent") for r in clients
           if r["results"].get("driver")]
    print(f"\nDriver: screen as drawn {driver['screen_as_drawn']}, on it "
          f"{driver['final_screen_ms']} ms after the flood started ({driver['bytes']} bytes), "
          f"started with {driver['started_with_observers']} observers, all observers gone after "
          f"{driver['all_observers_left_ms']} ms, error {driver['error']}.")
    print(f"\nTotal: {attached} observers attached, **{on_screen} ended on the driver's final "
          f"screen**, {resyncs} resyncs, {delivered / 1e6:.1f} MB delivered, last observer on "
          f"the final screen {last_ms} ms after the flood started, server RSS peak "
          f"{max(peaks) / 1024:.0f} MiB, server CPU {cpu[0] if cpu else None} % of one core "
          f"(from the end of the driver's ramp), server alive {server.get('alive')}, healthz "
          f"{server.get('healthz')}, panics in its log {server.get('panics')}, server closes by "
          f"code {server.get('closes')}, client process failures "
          f"{server.get('client_failures')}.")
    print("\nREADME row:\n")
    procs = sum(1 for r in clients if r["params"]["observers"] > 0)
    print(row([f"{attached:,} observers, {procs} client processes, "
               f"{clients[0]['params']['bytes'] / 1e6:.0f} MB flood", f"{on_screen:,} / {attached:,}",
               f"{resyncs:,}", f"{delivered / 1e6:,.0f} MB", f"{last_ms:,} ms" if last_ms else "",
               f"{max(peaks) / 1024:.0f} MiB, {cpu[0] if cpu else ''} %",
               "0" if server.get("alive") and not server.get("panics") else "**crashed**"]))


main()
