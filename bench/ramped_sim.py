"""Flotta's simulated vehicles, connected in batches instead of all at once (P4 `--client ramped`).

`flotta sim --vehicles N` starts every device at the same moment. With thousands of vehicles on
a small machine their opening handshakes time out and retry in a storm, so this runs the very
same `SimDevice`s (provisioned the same way, in the gateway's SQLite DB) but starts them
`--batch` at a time, each batch connected before the next. Prints the line `flotta sim` prints
once all are connected, then holds them until killed or `--hold` runs out.

    python bench/ramped_sim.py --connect ws://127.0.0.1:PORT --vehicles 10000 --data-dir D
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from flotta.clock import ScaledClock
from flotta.gateway.endpoints import DEVICE_PATH
from flotta.settings import Settings
from flotta.sim.fleet import SimFleet
from flotta.sim.runner import _identities  # the provisioning `flotta sim` itself does


async def main(args: argparse.Namespace) -> None:
    if not args.connect.startswith(("ws://127.0.0.1", "ws://localhost")):
        raise SystemExit("loopback only")
    base = Settings(demo=True)
    settings = Settings(
        demo=True,
        data_dir=args.data_dir,
        sim={**base.sim.model_dump(), "vehicles": args.vehicles, "wake_profile": "instant"},
    )
    identities = await _identities(settings)
    url = args.connect.rstrip("/") + DEVICE_PATH
    fleet = SimFleet(
        identities,
        url=url,
        clock=ScaledClock(1.0),
        wake_profile="instant",
        idle_sleep_s=settings.sim.idle_sleep_s,
        seed=settings.sim.seed,
        tick_s=args.tick,
    )
    tasks: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.connect_timeout
    try:
        for start in range(0, len(fleet.devices), args.batch):
            batch = fleet.devices[start : start + args.batch]
            tasks += [asyncio.create_task(d.run(), name=f"sim-{d.vin}") for d in batch]
            waiting = asyncio.gather(*(d.connected.wait() for d in batch))
            await asyncio.wait_for(waiting, max(1.0, deadline - loop.time()))
        print(f"{len(identities)} simulated vehicles connected to {url}", flush=True)
        await asyncio.sleep(args.hold)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connect", required=True)
    parser.add_argument("--vehicles", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--tick", type=float, default=30.0)
    parser.add_argument("--connect-timeout", type=float, default=600.0)
    parser.add_argument("--hold", type=float, default=900.0, help="seconds to hold, at most")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
