"""P4: memory per connected vehicle in one gateway process, against a bare WebSocket server.

Flotta: `flotta serve` (demo settings, its own data dir), then `flotta sim --vehicles N` as a
second process, which provisions N vehicles in the same SQLite DB and connects them. The server
process's RSS (VmRSS) is read once idle and again once all N are connected and RSS has settled.

Baseline: `bench/bare_ws_server.py` (uvicorn + a Starlette endpoint that only receives) holding
N idle connections from `bench/ws_idle_clients.py`, measured the same way.

    python bench/gateway_memory.py [--vehicles 2000] [--full]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

DEFAULT_VEHICLES = 2_000
FULL_VEHICLES = 10_000
TARGET_KIB = 20.0
TARGET_COUNT = 10_000
SETTLE_S = 30.0


@dataclass
class Footprint:
    connected: int
    before_kib: int
    after_kib: int
    settled: bool
    connect_s: float
    client: str = ""

    @property
    def per_link_kib(self) -> float:
        return (self.after_kib - self.before_kib) / max(self.connected, 1)


def connect_timeout(count: int) -> float:
    return 60.0 + count / 50.0


def wait_for_sim(sim: h.Proc, server: h.Proc, port: int, count: int) -> None:
    """Until the sim says all are connected; progress every 10 s, details if it gives up."""
    deadline = time.monotonic() + connect_timeout(count)
    next_report = time.monotonic() + 10
    peak = 0
    while not h.log_contains(sim, "simulated vehicles connected"):
        links = h.established_to_port(port)
        peak = max(peak, links)
        if not sim.alive() or time.monotonic() > deadline:
            dropped = sim.log_text().count("device link dropped")
            reason = "gave up" if not sim.alive() else "did not finish in time"
            raise h.BenchError(
                f"flotta sim {reason} (rc={sim.popen.returncode}) connecting {count} vehicles: "
                f"{links} links established now, {peak} at most; the sim logged {dropped} "
                f"dropped links (last: {last_drop(sim)}); server "
                f"{'alive' if server.alive() else 'DEAD'}; the sim's last words: "
                + repr(last_words(sim))
            )
        if time.monotonic() >= next_report:
            h.log(
                f"  {links} of {count} links established, server RSS "
                f"{h.rss_kib(server.pid) / 1024:.0f} MiB"
            )
            next_report += 10
        time.sleep(0.5)


def last_words(proc: h.Proc) -> str:
    lines = [
        line
        for line in proc.log_text().splitlines()
        if line.strip() and "device link dropped" not in line
    ]
    return lines[-1].strip() if lines else ""


def last_drop(sim: h.Proc) -> str:
    lines = [line for line in sim.log_text().splitlines() if "device link dropped" in line]
    if not lines:
        return "none"
    return lines[-1].split("device link dropped", 1)[1].strip()[:120]


def start_vehicles(
    client: str, root: Path, procs: list[h.Proc], port: int, data_dir: Path, count: int
) -> h.Proc:
    if client == "sim":
        return h.start_sim(root, procs, port=port, data_dir=data_dir, vehicles=count, tick_s=30)
    proc = h.spawn(
        "ramped-sim",
        [
            h.PYTHON,
            str(h.BENCH_DIR / "ramped_sim.py"),
            "--connect",
            f"ws://{h.HOST}:{port}",
            "--vehicles",
            str(count),
            "--data-dir",
            str(data_dir),
            "--tick",
            "30",
            "--connect-timeout",
            str(connect_timeout(count)),
        ],
        root,
    )
    procs.append(proc)
    return proc


def measure_flotta(count: int, client: str) -> Footprint:
    with h.workspace("p4-flotta") as (root, procs):
        server, port, data_dir = h.start_serve(root, procs)
        before, _ = h.settled_rss(server.pid, SETTLE_S)
        h.log(
            f"flotta serve idle at {before / 1024:.1f} MiB; starting "
            f"{'flotta sim' if client == 'sim' else 'bench/ramped_sim.py'} with {count} "
            "vehicles (provisioning takes a while)"
        )
        started = time.monotonic()
        sim = start_vehicles(client, root, procs, port, data_dir, count)
        wait_for_sim(sim, server, port, count)
        connect_s = time.monotonic() - started
        if not server.alive():
            raise h.BenchError(f"flotta serve died under {count} vehicles:\n{server.log_tail()}")
        h.wait_until(
            lambda: h.established_to_port(port) >= count, 30, f"{count} established links", server
        )
        after, settled = h.settled_rss(server.pid, SETTLE_S)
        connected = h.established_to_port(port)
        problems = h.server_problems(server)
        if problems:
            h.log("flotta serve logged problems: " + " | ".join(problems[-5:]))
        return Footprint(min(connected, count), before, after, settled, connect_s, client)


def measure_bare(count: int, ws: str = "auto") -> Footprint:
    with h.workspace("p4-bare") as (root, procs):
        port = h.free_port()
        server = h.spawn(
            "bare-ws",
            [h.PYTHON, str(h.BENCH_DIR / "bare_ws_server.py"), "--port", str(port), "--ws", ws],
            root,
        )
        procs.append(server)
        h.wait_until(
            lambda: h.answers_ok(f"http://{h.HOST}:{port}/status"), 30, "bare /status", server
        )
        before, _ = h.settled_rss(server.pid, SETTLE_S)
        started = time.monotonic()
        clients = h.spawn(
            "ws-clients",
            [
                h.PYTHON,
                str(h.BENCH_DIR / "ws_idle_clients.py"),
                "--url",
                f"ws://{h.HOST}:{port}/gateway/v1/connect",
                "--count",
                str(count),
                "--connect-timeout",
                str(connect_timeout(count)),
            ],
            root,
        )
        procs.append(clients)
        h.wait_until(
            lambda: h.log_contains(clients, "connected"),
            connect_timeout(count) + 10,
            f"{count} idle WebSocket connections",
            clients,
            interval_s=0.5,
        )
        connect_s = time.monotonic() - started
        h.wait_until(
            lambda: h.established_to_port(port) >= count, 30, f"{count} established links", server
        )
        after, settled = h.settled_rss(server.pid, SETTLE_S)
        connected = h.established_to_port(port)
        return Footprint(min(connected, count), before, after, settled, connect_s)


def run(
    quick: bool = False, vehicles: int | None = None, full: bool = False, client: str = "auto"
) -> list[h.Row]:
    count = vehicles or (FULL_VEHICLES if full else DEFAULT_VEHICLES)
    h.log(f"P4: bare WebSocket server with {count} idle connections")
    bare = measure_bare(count)
    h.log(
        f"P4: bare {bare.per_link_kib:.1f} KiB/connection "
        f"({bare.before_kib} → {bare.after_kib} KiB)"
    )
    h.log(f"P4: flotta serve + simulated vehicles ({count})")
    sim_failure = None
    try:
        flotta = measure_flotta(count, "ramped" if client == "ramped" else "sim")
    except h.BenchError as exc:
        if client != "auto":
            raise
        sim_failure = str(exc)
        h.log(f"P4: {sim_failure}")
        h.log("P4: measuring again with the same simulated vehicles connected in batches")
        flotta = measure_flotta(count, "ramped")
    h.log(
        f"P4: flotta {flotta.per_link_kib:.1f} KiB/vehicle "
        f"({flotta.before_kib} → {flotta.after_kib} KiB, connected in {flotta.connect_s:.0f} s)"
    )
    ratio = flotta.per_link_kib / bare.per_link_kib if bare.per_link_kib > 0 else None
    notes = [
        f"RSS of the server process (VmRSS): flotta {flotta.before_kib / 1024:.1f} → "
        f"{flotta.after_kib / 1024:.1f} MiB, bare {bare.before_kib / 1024:.1f} → "
        f"{bare.after_kib / 1024:.1f} MiB; {count} links each; flotta's {count} vehicles "
        f"provisioned and connected in {flotta.connect_s:.0f} s by "
        + (
            "`flotta sim`"
            if flotta.client == "sim"
            else "bench/ramped_sim.py (flotta's SimDevices, 200 at a time)"
        ),
    ]
    if sim_failure:
        notes.append(
            f"`flotta sim --vehicles {count}` could not connect them all at once: {sim_failure}"
        )
    if not (flotta.settled and bare.settled):
        notes.append("RSS was still moving after the settle window; figure is indicative")
    count_ok = flotta.connected >= TARGET_COUNT if count >= TARGET_COUNT else None
    if count_ok:
        notes.append(
            f"count part of P4 met: one gateway process held {flotta.connected:,} "
            "vehicles; the memory part decides the verdict"
        )
    if count_ok is None:
        notes.append(
            f"the ≥ {TARGET_COUNT:,} vehicles part of P4 needs --full (this run: {count:,})"
        )
    rows = [
        h.Row(
            target_id="P4",
            what=f"gateway memory / vehicle ({flotta.connected:,} vehicles)",
            figure=f"{flotta.per_link_kib:.1f} KiB",
            baseline=f"{bare.per_link_kib:.1f} KiB/conn",
            ratio=ratio,
            ratio_note="x bare (lower is better)",
            target=f"≤ {TARGET_KIB:.0f} KB each, ≥ {TARGET_COUNT:,} vehicles",
            verdict=h.verdict(
                flotta.per_link_kib <= TARGET_KIB
                if count_ok is None
                else flotta.per_link_kib <= TARGET_KIB and count_ok
            ),
            notes=notes,
        )
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--vehicles", type=int, default=None, help=f"links to open (default {DEFAULT_VEHICLES:,})"
    )
    parser.add_argument("--full", action="store_true", help=f"{FULL_VEHICLES:,} vehicles")
    parser.add_argument(
        "--client",
        choices=("auto", "sim", "ramped"),
        default="auto",
        help="auto: `flotta sim`, and bench/ramped_sim.py if it gives up",
    )
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry; same run")
    args = parser.parse_args()
    print(h.env_summary())
    h.print_rows(run(args.quick, args.vehicles, args.full, args.client), "P4 gateway memory")


if __name__ == "__main__":
    main()
