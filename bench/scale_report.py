#!/usr/bin/env python3
"""Turns bench/scale.sh's records (JSON lines) into the markdown table of bench/results/scale.md:
per client process and, for the fleet, totals over every replica."""
import json
import sys


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main():
    path, machine = sys.argv[1], sys.argv[2]
    recs = [json.loads(line) for line in open(path) if line.strip()]
    print(f"# attachd scale run\n\nMachine: {machine}\n")
    print(row(["label", "connected", "failed", "attaches/s (ramp)", "RSS held MiB",
               "KiB/conn", "idle CPU %", "after close MiB", "drain", "errors"]))
    print(row(["---"] * 10))
    fleet = []
    for r in recs:
        if "results" not in r:
            continue
        x = r["results"]
        rss = x.get("rss_kib") or {}
        held = rss.get("held")
        after = rss.get("after_close")
        drain = x.get("drain") or {}
        drain_s = ""
        if drain:
            drain_s = (f"all closed {drain.get('all_closed_secs')} s, exited "
                       f"{drain.get('exited_secs')} s, codes {drain.get('close_codes')}")
        print(row([r["label"], x["connected"], x["failed"], x["ramp_attaches_per_sec"],
                   round(held / 1024, 1) if held else "", x.get("rss_kib_per_conn"),
                   x.get("idle_cpu_percent"), round(after / 1024, 1) if after else "",
                   drain_s, "; ".join(x.get("errors") or [])[:120]]))
        if r["label"].startswith("fleet-"):
            fleet.append(x)
    for r in recs:
        if "results" not in r:
            print(f"\n{r}")
    if fleet:
        conns = sum(x["connected"] for x in fleet)
        held = sum((x["rss_kib"]["held"] - x["rss_kib"]["with_sessions"]) for x in fleet)
        cpu = sum(x["idle_cpu_percent"] or 0 for x in fleet)
        rate = sum(x["ramp_attaches_per_sec"] for x in fleet)
        exits = [(x.get("drain") or {}).get("exited_secs") for x in fleet]
        print(f"\nFleet: {len(fleet)} replicas, {conns} connections, "
              f"{held / max(conns, 1):.2f} KiB server RSS per connection, "
              f"idle CPU {cpu:.1f} % of one core in total, "
              f"{rate:.0f} attaches/s during the ramp (sum), "
              f"drain exits after {exits} s.")


main()
