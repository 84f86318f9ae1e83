"""P5 by instruction count: the CPU instructions a `vehicle_data` request executes with metering
and rate limits on, against both off, counted by valgrind's callgrind.

Throughput (`vehicle_data.py --metering`) moves by ±15 % on this shared machine and CPU time
(`metering_cpu.py`) by a few per cent (two identical demos were seen 3 to 9 % apart); an
instruction count moves by about 0.3 %, whatever else the machine is doing, so a change of a
few hundred instructions per request shows. Instructions are not time (cache misses, the
ledger's thread running beside the loop on the other core), so this steers work on P5; the
target itself is measured by `vehicle_data.py --metering`.

Two counts per setup: the event loop's thread, which a saturated server is limited by, and all
threads, which adds the ledger's SQLite thread (its inserts run beside the loop, GIL released,
on the other core).

Each setup runs in its own process under callgrind: `flotta demo`'s app built in process
(as `metering_cpu.py` does), warmed up, then counted over `--requests` requests from 16
concurrent callers, ending with the batch's ledger commit. Only that stretch is counted
(callgrind's client requests, from a tiny helper compiled with gcc).
Under callgrind a request takes some 50 times longer, so work driven by the clock rather than
by requests (the ledger's 1 s gathering, the 1 s credential caches, the 2 s reload of an
account's month) would run some 50 times as often per request as in a server: those intervals
are stretched beyond the run, and every setup pays only its per-request work.

    python bench/metering_instructions.py [--requests N] [--repeats N] [--parts]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

HELPER_C = """
#include <valgrind/callgrind.h>
void count_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void count_stop(void) { CALLGRIND_DUMP_STATS; CALLGRIND_STOP_INSTRUMENTATION; }
"""
COLLECTED = re.compile(r"Collected : (\d+)")
TOTALS = re.compile(r"^totals: (\d+)", re.MULTILINE)
WARM_UP = 2_000
STRETCHED = 1e6  # seconds: longer than any run


def build_helper(directory: Path) -> Path:
    """The shared library whose two calls bracket the counted stretch."""
    if shutil.which("valgrind") is None or shutil.which("gcc") is None:
        raise h.BenchError("needs valgrind and gcc: apt-get install -y valgrind gcc")
    if not Path("/usr/include/valgrind/callgrind.h").exists():
        raise h.BenchError("needs valgrind's headers (/usr/include/valgrind/callgrind.h)")
    source, library = directory / "count.c", directory / "libcount.so"
    source.write_text(HELPER_C)
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source)],
        check=True,
        timeout=60,
    )
    return library


def skip_parts(parts: set[str]) -> None:
    """Take parts of metering out, to count what each costs (`--skip`)."""
    from flotta.billing import journal, ledger, meter

    async def commit_nothing(self: ledger.Ledger, events: list[ledger.UsageEvent]) -> None:
        return None

    if "commit" in parts:  # the ledger's group commit (loop and SQLite thread)
        ledger.Ledger._commit = commit_nothing  # type: ignore[method-assign]
    if "journal" in parts:  # the journal line written before the response
        journal.Journal.append = lambda self, event: None  # type: ignore[method-assign]
    if "record" in parts:  # all of recording: journal, ledger append, month counts, commit
        meter.Meter.record = lambda self, event: None  # type: ignore[method-assign]


def child(setup: str, requests: int, helper: str, skipped: set[str]) -> None:
    """Runs under callgrind: one demo, warmed up, then `requests` counted requests."""
    import flotta.billing.ledger as ledger
    import flotta.caching as caching
    import metering_cpu
    from flotta.cli.main import event_loop_factory, tune_gc_for_serving

    skip_parts(skipped)

    ledger.GATHER_S = STRETCHED
    plain_init = caching.ExpiringCache.__init__

    def stretched(self: caching.ExpiringCache, ttl_s: float, max_entries: int = 65_536) -> None:  # type: ignore[type-arg]
        plain_init(self, STRETCHED, max_entries)

    caching.ExpiringCache.__init__ = stretched  # type: ignore[method-assign]
    count = ctypes.CDLL(helper)

    async def run() -> None:
        with tempfile.TemporaryDirectory(prefix="flotta-p5instr-") as root:
            demo = await metering_cpu.start(setup, Path(root))
            try:
                await demo.batch(WARM_UP)
                tune_gc_for_serving()
                meter = demo.handle.runtime.meter
                if meter is not None:
                    meter._refresh_s = STRETCHED
                await demo.batch(metering_cpu.CONCURRENCY * 25)
                count.count_start()
                await demo.batch(requests)
                count.count_stop()
                if demo.refused:
                    raise h.BenchError(f"{demo.refused} requests were not answered 200")
            finally:
                demo.handle.server.should_exit = True
                await asyncio.gather(demo.task, return_exceptions=True)

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(run())


def count(
    setup: str, requests: int, helper: Path, workdir: Path, skipped: str
) -> tuple[float, float]:
    """Instructions per request of `setup`, counted in a child under callgrind: in the event
    loop's thread, and in all threads."""
    out = workdir / setup.replace(" ", "-")
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        # Every thread collects while instrumentation is on (the helper switches it on and
        # off), each into its own file: the loop's thread is the first.
        "--collect-atstart=yes",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}.%p",
        h.PYTHON,
        __file__,
        "--child",
        setup,
        "--requests",
        str(requests),
        "--helper",
        str(helper),
        "--skip",
        skipped,
    ]
    # Hash seeds change dict layouts and with them the count: fixed, runs repeat.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    found = COLLECTED.findall(done.stderr)
    # The helper's dump: `<out>.<pid>.1-01` holds the loop thread's counted stretch.
    dumps = list(workdir.glob(f"{out.name}.*.1-01"))
    if done.returncode != 0 or not found or len(dumps) != 1:
        raise h.BenchError(f"callgrind run of {setup!r} failed:\n{done.stderr[-2000:]}")
    loop = TOTALS.search(dumps[0].read_text())
    if loop is None:
        raise h.BenchError(f"no totals in {dumps[0]}")
    for path in workdir.glob(f"{out.name}.*"):
        path.unlink()
    return int(loop.group(1)) / requests, int(found[-1]) / requests


THREADS = {"loop": "event loop thread", "all": "all threads"}


def run(requests: int, repeats: int, parts: bool, skipped: str) -> list[h.Row]:
    names = ["off", "on", *(["metering only", "rate limits only"] if parts else [])]
    counts: dict[str, dict[str, list[float]]] = {name: {"loop": [], "all": []} for name in names}
    with tempfile.TemporaryDirectory(prefix="flotta-p5instr-") as root:
        workdir = Path(root)
        helper = build_helper(workdir)
        for repeat in range(repeats):
            for name in names if repeat % 2 == 0 else names[::-1]:
                loop, every = count(name, requests, helper, workdir, skipped)
                counts[name]["loop"].append(loop)
                counts[name]["all"].append(every)
                h.log(
                    f"{name}: {loop:,.0f} instructions per request in the event loop's thread, "
                    f"{every:,.0f} in all threads"
                )
    rows = []
    for threads, described in THREADS.items():
        off = h.median(counts["off"][threads])
        for name in names[1:]:
            mine = h.median(counts[name][threads])
            notes = [
                f"callgrind, {repeats} runs per setup of {requests} requests each (16 concurrent "
                "callers, in process, with the batch's ledger commit); medians; all threads, "
                "per setup: "
                + "; ".join(
                    f"{setup} " + ", ".join(f"{c:,.0f}" for c in counted["all"])
                    for setup, counted in counts.items()
                )
            ]
            rows.append(
                h.p5_cost_row(
                    f"instructions per vehicle_data request, {name}, {described}"
                    + (f" without {skipped}" if skipped else ""),
                    f"{mine:,.0f}",
                    f"{off:,.0f}",
                    mine / off,
                    notes if name == "on" and threads == "all" else None,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=800, help="counted per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setup")
    parser.add_argument("--parts", action="store_true", help="also each half alone")
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts of metering to leave out, to count what each costs: "
        "commit, journal, record",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--helper", help=argparse.SUPPRESS)
    args = parser.parse_args()
    skipped = {part for part in args.skip.split(",") if part}
    if unknown := skipped - {"commit", "journal", "record"}:
        parser.error(f"--skip: unknown parts {', '.join(sorted(unknown))}")
    if args.child:
        child(args.child, args.requests, args.helper, skipped)
        return
    print(h.env_summary())
    rows = run(args.requests, args.repeats, args.parts, ",".join(sorted(skipped)))
    h.print_rows(rows, "P5 by instruction count: vehicle_data with metering and limits")


if __name__ == "__main__":
    main()
