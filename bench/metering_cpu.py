"""P5, in process: the CPU a `vehicle_data` request costs with metering and rate limits on,
against both off, without sockets, uvicorn or a load generator.

`vehicle_data.py --metering` measures P5 as throughput, the target's own terms; on this shared
2-core machine its runs move by ±15 %. This one drives the ASGI apps of demos built in one
process (each with its simulated fleet and usage ledger), alternating small batches of
concurrent requests between them, and reads the event loop thread's CPU time per batch: each
batch of a setup is paired with the "off" batch next to it, so a change in machine speed cancels
out. Even so, two identical demos ("off" and "off again", which every run includes as its noise
floor) were seen 3 to 9 % apart on a busy machine: read the other ratios against that row.
Each metered batch ends with its ledger commit, so it pays for that commit. Two figures per
setup: the event loop thread's CPU, and the whole process's (the loop plus the ledger's SQLite
thread, which runs beside it but takes CPU from the same two cores: random usage keys once cost
that thread 16 µs a request, which the loop's figure could not show). Not measured: uvicorn's
sockets and its handling of the extra response headers (they add to both sides of the ratio,
or only to "on", so the direction is unknown).

    python bench/metering_cpu.py [--quick] [--parts] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h
from flotta.cli.main import event_loop_factory, tune_gc_for_serving
from flotta.demo import serve_demo
from flotta.settings import Settings

CONCURRENCY = 16  # as the throughput benchmark's connections
WARM_UP = 3_200
# Requests per batch, each batch ending in a ledger commit: a server commits about once a
# second, some 3,000 requests here, so each commit's fixed cost weighs a little more here.
BATCH = 1_000

SETUPS = {
    "off": (False, False),
    "on": (True, True),
    # A second demo with everything off: its ratio to "off" is the noise floor of the run
    # (two identical demos in one process were seen 3 to 9 % apart).
    "off again": (False, False),
    "metering only": (True, False),
    "rate limits only": (False, True),
}


def settings_for(data_dir: Path, metering: bool, limits: bool) -> Settings:
    """`flotta demo`'s settings with P5's switches: a limit and a threshold no run reaches."""
    base = Settings(demo=True)
    return Settings(
        demo=True,
        data_dir=data_dir,
        host="127.0.0.1",
        port=0,
        sim={**base.sim.model_dump(), "vehicles": 1, "wake_profile": "instant"},
        ratelimit={**base.ratelimit.model_dump(), "enabled": limits, "data": "100000/second"},
        billing={**base.billing.model_dump(), "metering": metering, "threshold": "1000000.00"},
    )


@dataclass
class Demo:
    name: str
    task: asyncio.Task[Any]
    handle: Any
    path: str
    headers: list[tuple[bytes, bytes]]
    refused: int = 0

    async def batch(self, count: int) -> None:
        """`count` requests from CONCURRENCY concurrent callers, straight into the app."""
        app = self.handle.server.config.loaded_app

        async def caller(requests: int) -> None:
            for _ in range(requests):
                scope = {
                    "type": "http",
                    "asgi": {"version": "3.0", "spec_version": "2.3"},
                    "http_version": "1.1",
                    "method": "GET",
                    "scheme": "http",
                    "path": self.path,
                    "raw_path": self.path.encode(),
                    "root_path": "",
                    "query_string": b"",
                    "headers": list(self.headers),
                    "client": ("127.0.0.1", 50_000),
                    "server": ("127.0.0.1", 80),
                    "state": {},
                }
                await app(scope, _receive, self._send)

        await asyncio.gather(*(caller(count // CONCURRENCY) for _ in range(CONCURRENCY)))
        meter = self.handle.runtime.meter
        if meter is not None:
            # The batch pays for its own ledger commit (its event-loop part): left to the
            # ledger's timer, a commit would land in whichever setup's batch was running.
            await meter.ledger.flushed()

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            self.refused += 1


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def start(name: str, root: Path) -> Demo:
    metering, limits = SETUPS[name]
    data_dir = Path(tempfile.mkdtemp(dir=root))
    ready = asyncio.Event()
    handles: list[Any] = []
    settings = settings_for(data_dir, metering, limits)
    task = asyncio.create_task(serve_demo(settings, ready=ready, handle_out=handles))
    await asyncio.wait_for(ready.wait(), 60)
    info = json.loads((data_dir / "demo.json").read_text())
    path = f"/api/1/vehicles/{info['vehicles'][0]}/vehicle_data"
    headers = [
        (b"host", b"127.0.0.1"),
        (b"authorization", f"Bearer {info['access_token']}".encode()),
    ]
    return Demo(name, task, handles[0], path, headers)


# What each batch is timed with: the event loop's thread, and the whole process.
CLOCKS = {"event loop thread": time.thread_time, "process": time.process_time}


async def measure(names: list[str], rounds: int, batch: int) -> dict[str, dict[str, list[float]]]:
    """µs of CPU per request, per clock (CLOCKS), setup and round."""
    with tempfile.TemporaryDirectory(prefix="flotta-p5cpu-") as root:
        demos = [await start(name, Path(root)) for name in names]
        try:
            for demo in demos:
                await demo.batch(WARM_UP)
            # As `flotta demo` does once started.
            tune_gc_for_serving()
            cpu: dict[str, dict[str, list[float]]] = {
                clock: {name: [] for name in names} for clock in CLOCKS
            }
            for round_number in range(rounds):
                # Alternate the order, so no setup always runs right after another.
                for demo in demos if round_number % 2 == 0 else demos[::-1]:
                    before = {clock: read() for clock, read in CLOCKS.items()}
                    await demo.batch(batch)
                    for clock, read in CLOCKS.items():
                        used = read() - before[clock]
                        cpu[clock][demo.name].append(1e6 * used / batch)
            refused = sum(demo.refused for demo in demos)
            if refused:
                raise h.BenchError(f"{refused} requests were not answered 200")
            return cpu
        finally:
            for demo in demos:
                demo.handle.server.should_exit = True
            await asyncio.gather(*(demo.task for demo in demos), return_exceptions=True)


def run(quick: bool = False, parts: bool = False, rounds: int | None = None) -> list[h.Row]:
    names = list(SETUPS) if parts else ["off", "on", "off again"]
    rounds = rounds or (15 if quick else 40)
    batch = BATCH
    # The loop `flotta demo` runs on (uvloop where installed).
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        cpu = runner.run(measure(names, rounds, batch))
    rows = []
    for clock, per_setup in cpu.items():
        off = per_setup["off"]
        for name in names[1:]:
            mine = per_setup[name]
            paired = h.median([m / base for m, base in zip(mine, off, strict=True)])
            notes = [
                f"{len(names)} demos in one process, {rounds} rounds of {batch} requests each "
                f"({CONCURRENCY} concurrent callers), each metered batch with its ledger "
                "commit; ratio = median over rounds of (setup ÷ the off batch of the same round)"
            ]
            rows.append(
                h.p5_cost_row(
                    f"CPU per vehicle_data request, {clock}, {name}",
                    f"{h.median(mine):,.0f} µs",
                    f"{h.median(off):,.0f} µs",
                    paired,
                    notes if name == "on" and clock == "process" else None,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="15 rounds instead of 40")
    parser.add_argument("--parts", action="store_true", help="also each half alone")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    print(h.env_summary())
    rows = run(args.quick, args.parts, args.rounds)
    h.print_rows(rows, "P5 in process: CPU per vehicle_data request")


if __name__ == "__main__":
    main()
