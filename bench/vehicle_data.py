"""P3: `vehicle_data` reads per second, against the bare `GET /status` on the same server.

Starts `flotta demo` (instant wake) on a free port with a temp data dir, then drives load from a
separate process: Debian's `wrk` if installed, else `bench/loadgen.py`. Runs alternate between
the two endpoints (`--repeats` x `--duration` s each); the medians are compared.

    python bench/vehicle_data.py [--quick] [--server demo|serve]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

TARGET_RPS = 5_000
TARGET_RATIO = 0.5
CONNECTIONS = 16


def measure(
    target: h.Target,
    path: str,
    *,
    duration_s: float,
    connections: int,
    headers: dict[str, str] | None,
) -> tuple[float, int]:
    """Requests/s (2xx only) and the count of other answers, for one run."""
    if h.wrk_path() is not None:
        result = h.run_wrk(
            target.base_url + path, duration_s=duration_s, connections=connections, headers=headers
        )
        ok_share = 1 - (result.non_2xx / result.requests) if result.requests else 0.0
        return result.rps * ok_share, result.non_2xx + result.socket_errors
    args = [
        "closed",
        "--port",
        str(target.port),
        "--path",
        path,
        "--connections",
        str(connections),
        "--duration",
        str(duration_s),
    ]
    for name, value in (headers or {}).items():
        args += ["--header", f"{name}: {value}"]
    out = h.run_loadgen(args, duration_s + 60)
    ok = sum(v for k, v in out["statuses"].items() if k.startswith("2"))
    return ok / out["duration_s"], out["completed"] - ok + sum(out["errors"].values())


def run(
    quick: bool = False,
    server: str = "demo",
    vehicles: int = 4,
    repeats: int | None = None,
    duration_s: float | None = None,
    connections: int = CONNECTIONS,
) -> list[h.Row]:
    repeats = repeats or 3
    duration_s = duration_s or (2.0 if quick else 5.0)
    with h.workspace("p3") as (root, procs):
        target = h.start_target(root, procs, mode=server, vehicles=vehicles)
        h.log(f"P3: {target.describe()} at {target.base_url}")
        path = f"/api/1/vehicles/{target.vins[0]}/vehicle_data"
        status, body = h.http_get(target.base_url + path, headers=target.auth, timeout_s=10)
        if status != 200:
            raise h.BenchError(f"GET {path} answered {status}: {body[:300]!r}")
        size = len(body)
        json.loads(body)
        nagle = h.nagle_probe(target.base_url)
        bare_runs: list[float] = []
        data_runs: list[float] = []
        failures = 0
        cpu_runs: list[dict[str, float]] = []
        for index in range(repeats):
            rps, bad = measure(
                target, "/status", duration_s=duration_s, connections=connections, headers=None
            )
            bare_runs.append(rps)
            failures += bad
            with h.cpu_meter(target.processes()) as shares:
                rps, bad = measure(
                    target,
                    path,
                    duration_s=duration_s,
                    connections=connections,
                    headers=target.auth,
                )
            cpu_runs.append(shares)
            data_runs.append(rps)
            failures += bad
            h.log(
                f"P3 run {index + 1}/{repeats}: /status {bare_runs[-1]:,.0f} req/s, "
                f"vehicle_data {data_runs[-1]:,.0f} req/s"
            )
            if not target.server.alive():
                raise h.BenchError(f"the server died under load:\n{target.server.log_tail()}")
        problems = h.server_problems(target.server)
    bare, data = h.median(bare_runs), h.median(data_runs)
    cpu = {name: h.median([r.get(name, 0.0) for r in cpu_runs]) for name in cpu_runs[-1]}
    ratio = data / bare if bare else None
    notes = [
        f"{target.describe()}; {repeats} interleaved runs x {duration_s:g} s, {connections} "
        f"keep-alive connections, {'wrk' if h.wrk_path() else 'bench/loadgen.py'} in its own "
        f"process; medians; vehicle_data answer {size:,} bytes",
        "runs: /status "
        + ", ".join(f"{v:,.0f}" for v in bare_runs)
        + "; vehicle_data "
        + ", ".join(f"{v:,.0f}" for v in data_runs),
        f"CPU during the vehicle_data runs (share of one core): {h.describe_cpu(cpu)}",
    ]
    if failures:
        notes.append(f"{failures} non-2xx answers or socket errors (not counted in req/s)")
    if nagle:
        notes.append(nagle)
    if problems:
        notes.append("server log: " + " | ".join(problems[-4:]))
    ok = data >= TARGET_RPS and ratio is not None and ratio >= TARGET_RATIO
    return [
        h.Row(
            target_id="P3",
            what="vehicle_data reads",
            figure=f"{data:,.0f} req/s",
            baseline=f"{bare:,.0f} req/s /status",
            ratio=ratio,
            ratio_note="of bare",
            target=f"≥ {TARGET_RPS:,} req/s; ≥ {TARGET_RATIO:.0%} of bare",
            verdict=h.verdict(ok),
            notes=notes,
        )
    ]


# P5: metering and rate limits on, with a limit and a threshold no run can reach, so every
# request pays the whole check (authorisation, a moving-window hit, a ledger commit before the
# response) and none is refused. "Off" switches both off.
EVERYTHING_ON = {
    "FLOTTA_RATELIMIT__ENABLED": "true",
    "FLOTTA_RATELIMIT__DATA": "100000/second",
    "FLOTTA_BILLING__METERING": "true",
    "FLOTTA_BILLING__THRESHOLD": "1000000.00",
}
EVERYTHING_OFF = {"FLOTTA_RATELIMIT__ENABLED": "false", "FLOTTA_BILLING__METERING": "false"}
# With --parts: each half alone too, so a change can be traced to the half that it moved.
METERING_ONLY = {**EVERYTHING_ON, "FLOTTA_RATELIMIT__ENABLED": "false"}
LIMITS_ONLY = {**EVERYTHING_ON, "FLOTTA_BILLING__METERING": "false"}
TARGET_OVERHEAD = 0.10


def run_metering(
    quick: bool = False,
    vehicles: int = 4,
    repeats: int | None = None,
    duration_s: float | None = None,
    connections: int = CONNECTIONS,
    parts: bool = False,
) -> list[h.Row]:
    """P5: vehicle_data req/s on demos with metering and rate limits off and on, a second "off"
    demo as the noise floor (and, with `parts`, each half alone), runs interleaved forward and
    backward."""
    # Even: as many backward rounds as forward ones.
    repeats = repeats or 4
    repeats += repeats % 2
    duration_s = duration_s or (2.0 if quick else 5.0)
    # "off again" is a second demo with everything off, measured like the others: its ratio to
    # "off" is what this machine's noise alone makes of two identical servers (seen here from
    # 0.89 to 1.04), the yardstick for the gap between "on" and "off". It never runs next to
    # "off" ("on" always does), so it also spans more of the machine's drift than "on" does.
    setups = [("off", EVERYTHING_OFF), ("on", EVERYTHING_ON), ("off again", EVERYTHING_OFF)]
    if parts:
        setups += [("metering only", METERING_ONLY), ("rate limits only", LIMITS_ONLY)]
    with h.workspace("p5-metering") as (root, procs):
        targets = []
        for index, (_, env) in enumerate(setups):
            name = "flotta-demo" if index == 0 else f"flotta-demo-{index}"
            d = h.start_demo(root, procs, vehicles=vehicles, env=env, name=name)
            targets.append(h.Target("demo", d.proc, d.base_url, d.token, d.vins))
        runs: list[list[float]] = [[] for _ in setups]
        failures = 0
        for index in range(repeats):
            # Forward, then backward: with a fixed order, whatever the previous run leaves
            # behind (the ledger's commit, a warm cache) always falls on the same setup.
            order = list(enumerate(targets))
            for which, target in order if index % 2 == 0 else order[::-1]:
                path = f"/api/1/vehicles/{target.vins[0]}/vehicle_data"
                rps, bad = measure(
                    target,
                    path,
                    duration_s=duration_s,
                    connections=connections,
                    headers=target.auth,
                )
                runs[which].append(rps)
                failures += bad
            latest = ", ".join(
                f"{name} {r[-1]:,.0f}" for (name, _), r in zip(setups, runs, strict=True)
            )
            h.log(f"P5 run {index + 1}/{repeats}: {latest} req/s")
    bare = h.median(runs[0])
    medians = [h.median(r) for r in runs]
    notes = [
        f"{len(setups)} `flotta demo` processes, {repeats} interleaved runs x {duration_s:g} s, "
        f"{connections} connections; on: metering (a journal line before each response, "
        f"committed to the ledger about once a second) and a "
        f"{EVERYTHING_ON['FLOTTA_RATELIMIT__DATA']} data limit",
        "runs: "
        + "; ".join(
            f"{name} " + ", ".join(f"{v:,.0f}" for v in r)
            for (name, _), r in zip(setups, runs, strict=True)
        ),
    ]
    if failures:
        notes.append(f"{failures} non-2xx answers or socket errors (not counted in req/s)")
    ratio = medians[1] / bare if bare else None
    ok = ratio is not None and ratio >= 1 - TARGET_OVERHEAD
    if all(runs[0]):
        # Each "on" run against the "off" run next to it: a slow drift of the machine
        # cancels out of these, not out of the ratio of medians.
        paired = h.median([on / off for on, off in zip(runs[1], runs[0], strict=True)])
        notes.append(f"paired: the median of the runs' own on ÷ off ratios is {paired:.2f}")
    notes.append(
        f"noise floor: off again ÷ off is {medians[2] / bare:.2f} (identical servers; the same "
        "machine noise is in the on ÷ off ratio)"
        if bare
        else "noise floor: no off runs"
    )
    rows = [
        h.Row(
            target_id="P5",
            what="vehicle_data with metering and rate limits on",
            figure=f"{medians[1]:,.0f} req/s",
            baseline=f"{bare:,.0f} req/s both off",
            ratio=ratio,
            ratio_note="of both off",
            target=f"≤ {TARGET_OVERHEAD:.0%} overhead",
            verdict=h.verdict(ok),
            notes=notes,
        )
    ]
    for (name, _), median in zip(setups[3:], medians[3:], strict=True):
        rows.append(
            h.Row(
                target_id="P5",
                what=f"vehicle_data with {name} (a part, no target)",
                figure=f"{median:,.0f} req/s",
                baseline=f"{bare:,.0f} req/s both off",
                ratio=median / bare if bare else None,
                ratio_note="of both off",
                target="—",
                verdict=h.verdict(None),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 x 2 s instead of 3 x 5 s")
    parser.add_argument(
        "--server",
        choices=("demo", "serve"),
        default="demo",
        help="demo: `flotta demo`; serve: `flotta serve` + `flotta sim`",
    )
    parser.add_argument("--vehicles", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None, help="seconds per run")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument(
        "--metering",
        action="store_true",
        help="P5 instead: vehicle_data with metering and rate limits on vs off (two demos)",
    )
    parser.add_argument(
        "--parts",
        action="store_true",
        help="with --metering: also metering alone and rate limits alone (four demos)",
    )
    args = parser.parse_args()
    print(h.env_summary())
    if args.metering:
        rows = run_metering(
            args.quick, args.vehicles, args.repeats, args.duration, args.connections, args.parts
        )
        h.print_rows(rows, "P5 metering and rate limits on vehicle_data")
        return
    rows = run(
        args.quick, args.server, args.vehicles, args.repeats, args.duration, args.connections
    )
    h.print_rows(rows, "P3 vehicle_data")


if __name__ == "__main__":
    main()
