"""Run every Flotta benchmark and print one summary table against the product targets.

    .venv/bin/python bench/run_all.py [--quick] [--full] [--server demo|serve] [--only P3,P2]

Each figure sits next to a bare baseline taken in the same run and their ratio. These are
measurements, not tests: nothing here fails a build, and a noisy machine moves the absolute
numbers more than the ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import commands
import demo_startup
import gateway_memory
import harness as h
import telemetry
import vehicle_data


def plan(args: argparse.Namespace) -> list[tuple[str, str, Callable[[], list[h.Row]]]]:
    """(id, name, runner) in the order run: startup first, while the machine is quietest."""
    return [
        ("P6", "demo startup", lambda: demo_startup.run(args.quick)),
        ("P1", "telemetry stream", lambda: telemetry.run(args.quick)),
        ("P3", "vehicle_data reads", lambda: vehicle_data.run(args.quick, args.server)),
        ("P2", "command round trip", lambda: commands.run(args.quick, args.server)),
        ("P4", "gateway memory", lambda: gateway_memory.run(args.quick, args.vehicles, args.full)),
    ]


def failed_row(target_id: str, name: str, exc: BaseException) -> h.Row:
    message = str(exc).strip() or type(exc).__name__
    return h.Row(
        target_id,
        name,
        "—",
        "—",
        None,
        "",
        "—",
        "FAILED",
        [f"could not measure: {line}" for line in message.splitlines()[:20]],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="shorter runs (about 3 minutes in all instead of 5)"
    )
    parser.add_argument("--full", action="store_true", help="P4 with 10,000 vehicles")
    parser.add_argument("--vehicles", type=int, default=None, help="P4 vehicle count")
    parser.add_argument(
        "--server",
        choices=("demo", "serve"),
        default="demo",
        help="P2/P3 against `flotta demo` (default) or `flotta serve` + `flotta sim`",
    )
    parser.add_argument("--only", default="", help="comma-separated ids, e.g. P1,P2,P3")
    args = parser.parse_args()
    wanted = {part.strip().upper() for part in args.only.split(",") if part.strip()}

    print("Flotta benchmarks" + (" (quick)" if args.quick else ""))
    print(h.env_summary())
    print(h.SHARED_CORES_NOTE)
    sys.stdout.flush()
    rows: list[h.Row] = []
    started = time.monotonic()
    for target_id, name, runner in plan(args):
        if wanted and target_id not in wanted:
            continue
        h.log(f"{target_id} {name} …")
        began = time.monotonic()
        try:
            rows.extend(runner())
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            rows.append(failed_row(target_id, name, exc))
        h.log(f"{target_id} done in {time.monotonic() - began:.0f} s")
    h.print_rows(
        rows,
        f"Summary ({time.monotonic() - started:.0f} s; load average now {os.getloadavg()[0]:.2f})",
    )


if __name__ == "__main__":
    main()
