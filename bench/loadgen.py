"""A small HTTP/1.1 load generator for loopback: keep-alive connections over raw asyncio sockets.

Run in its own process (the benchmarks do), so it never shares an event loop with the server:

    python bench/loadgen.py closed --port P --path /status --connections 32 --duration 5
    python bench/loadgen.py open --port P --path /status --rate 1000 --duration 5

`closed`: every connection sends its next request as soon as the previous answer arrives; the
figure is completed requests per second. `open`: requests are released on a fixed schedule
(`--rate` per second) whatever the server does, onto a pool of connections; latency runs from
the release to the last byte of the answer, so time spent waiting for a free connection (the
server falling behind) counts. The scheduler's own timer slack (about 1 ms) does not; its lag is
reported separately. Several `--path` values are used in turn (e.g. one per vehicle).

It prints one JSON object on its last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import sys
import time
from collections import Counter
from typing import Any

MAX_DURATION_S = 120.0
MAX_CONNECTIONS = 1024


def build_requests(args: argparse.Namespace) -> list[bytes]:
    body = args.body.encode() if args.body is not None else b""
    requests = []
    for path in args.path:
        lines = [f"{args.method} {path} HTTP/1.1", f"Host: {args.host}:{args.port}"]
        lines += args.header
        if args.body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        requests.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return requests


class Connection:
    """One keep-alive connection: send a request, read one Content-Length framed answer."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def exchange(self, request: bytes, timeout_s: float) -> int:
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.writer is not None and self.reader is not None
        self.writer.write(request)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout_s)
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
            elif lowered == b"transfer-encoding":
                raise ValueError("chunked answers are not supported by this load generator")
        if length:
            await asyncio.wait_for(self.reader.readexactly(length), timeout_s)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _percentiles(latencies_s: list[float]) -> dict[str, float | None]:
    values = sorted(latencies_s)

    def at(q: float) -> float | None:
        if not values:
            return None
        rank = max(0, min(len(values) - 1, math.ceil(q / 100 * len(values)) - 1))  # nearest rank
        return round(values[rank] * 1000, 3)

    return {
        "p50_ms": at(50),
        "p90_ms": at(90),
        "p99_ms": at(99),
        "max_ms": round(values[-1] * 1000, 3) if values else None,
    }


async def closed_loop(args: argparse.Namespace, requests: list[bytes]) -> dict[str, Any]:
    """Back-to-back requests on N connections for a fixed time; a short warm-up is not counted."""
    turn = itertools.cycle(requests)
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    start = time.perf_counter()
    counting_from = start + args.warmup
    deadline = counting_from + args.duration

    async def worker() -> None:
        conn = Connection(args.host, args.port)
        while (now := time.perf_counter()) < deadline:
            try:
                status = await conn.exchange(next(turn), args.timeout)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                errors[type(exc).__name__] += 1
                conn.close()
                await asyncio.sleep(0.01)
                continue
            done = time.perf_counter()
            if now >= counting_from and done <= deadline:
                statuses[status] += 1
                latencies.append(done - now)
        conn.close()

    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(args.connections))),
        args.warmup + args.duration + args.timeout + 5,
    )
    completed = sum(statuses.values())
    return {
        "mode": "closed",
        "connections": args.connections,
        "completed": completed,
        "rps": completed / args.duration,
        "duration_s": args.duration,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": dict(errors),
        **_percentiles(latencies),
    }


async def open_loop(args: argparse.Namespace, requests: list[bytes]) -> dict[str, Any]:
    """Release `rate` requests per second for `duration` seconds onto a connection pool."""
    total = int(args.rate * args.duration)
    queue: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue()
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    lags: list[float] = []
    pool = [Connection(args.host, args.port) for _ in range(args.connections)]
    await asyncio.gather(*(c.open() for c in pool))

    async def worker(conn: Connection) -> None:
        while (item := await queue.get()) is not None:
            request, released = item
            try:
                status = await conn.exchange(request, args.timeout)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                errors[type(exc).__name__] += 1
                conn.close()
                continue
            statuses[status] += 1
            latencies.append(time.perf_counter() - released)
        conn.close()

    workers = [asyncio.create_task(worker(c)) for c in pool]
    turn = itertools.cycle(requests)
    start = time.perf_counter() + 0.05
    for index in range(total):
        due = start + index / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        released = time.perf_counter()
        lags.append(released - due)
        queue.put_nowait((next(turn), released))
    released_all = time.perf_counter()
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=args.timeout + 5)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    completed = sum(statuses.values())
    lags.sort()
    return {
        "mode": "open",
        "connections": args.connections,
        "target_rate": args.rate,
        "sent": total,
        "completed": completed,
        "achieved_rate": total / max(released_all - start, 1e-9),
        "completion_rate": completed / max(time.perf_counter() - start, 1e-9),
        "unfinished": total - completed - sum(errors.values()),
        "scheduler_lag_p99_ms": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 3)
        if lags
        else None,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": dict(errors),
        **_percentiles(latencies),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("closed", "open"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path", action="append", required=True)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--body", default=None)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("this load generator only targets loopback")
    args.duration = min(args.duration, MAX_DURATION_S)
    args.connections = max(1, min(args.connections, MAX_CONNECTIONS))
    return args


def main(argv: list[str]) -> None:
    args = parse(argv)
    requests = build_requests(args)
    run = closed_loop if args.mode == "closed" else open_loop
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args, requests))
    else:
        result = uvloop.run(run(args, requests))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
