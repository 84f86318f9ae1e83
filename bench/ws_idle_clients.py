"""Open N idle WebSocket connections to a loopback server and hold them (the P4 baseline's client).

Uses the same client library and options as Flotta's simulator (`websockets`, no compression).
Each connection sends one small binary frame, as a vehicle's HELLO would, then stays idle.
Prints `connected N` once all are open, then holds them until killed or `--hold` runs out.

    python bench/ws_idle_clients.py --url ws://127.0.0.1:8765/gateway/v1/connect --count 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

import websockets

HELLO_LIKE = b"\x01\x00\x00\x00\x00" + b'{"firmware":"bench","power":"online","config":{}}'


async def hold_one(
    url: str, opened: asyncio.Semaphore, ready: list[int], release: asyncio.Event
) -> None:
    async with opened:
        ws = await websockets.connect(url, compression=None, max_size=1_000_000, open_timeout=30)
    try:
        await ws.send(HELLO_LIKE)
        ready.append(1)
        await release.wait()
    finally:
        with contextlib.suppress(Exception):
            await ws.close()


async def main(args: argparse.Namespace) -> None:
    if not args.url.startswith(("ws://127.0.0.1", "ws://localhost")):
        raise SystemExit("loopback only")
    opened = asyncio.Semaphore(args.concurrency)
    release = asyncio.Event()
    ready: list[int] = []
    tasks = [
        asyncio.create_task(hold_one(args.url, opened, ready, release)) for _ in range(args.count)
    ]
    deadline = asyncio.get_running_loop().time() + args.connect_timeout
    while len(ready) < args.count:
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise SystemExit(f"{len(failed)} connections failed: {failed[0].exception()!r}")
        if asyncio.get_running_loop().time() > deadline:
            raise SystemExit(f"only {len(ready)} of {args.count} connected in time")
        await asyncio.sleep(0.1)
    print(f"connected {len(ready)}", flush=True)
    await asyncio.sleep(args.hold)
    release.set()
    await asyncio.wait(tasks, timeout=10)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--hold", type=float, default=600.0, help="seconds to hold, at most")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
