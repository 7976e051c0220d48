"""terminado peer for attachd-bench: one tornado process serving /websocket/<name>.

A NamedTermManager gives every client that opens the same <name> the same terminal, so one
client can drive and others observe, like attachd's driver and observers.
"""

import argparse
import asyncio

import tornado.web
from terminado import NamedTermManager, TermSocket


async def serve(port: int, shell: str) -> None:
    manager = NamedTermManager(shell_command=[shell], max_terminals=10000)
    app = tornado.web.Application(
        [(r"/websocket/(\w+)", TermSocket, {"term_manager": manager})]
    )
    app.listen(port, address="127.0.0.1")
    print(f"terminado peer on 127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--shell", default="/bin/sh")
    args = ap.parse_args()
    asyncio.run(serve(args.port, args.shell))


if __name__ == "__main__":
    main()
