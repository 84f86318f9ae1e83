"""P2: REST command round trip through the gateway to simulated vehicles, against `/status`.

Each request is `POST /api/1/vehicles/{vin}/command/{flash_lights|honk_horn}`, taken in turn
across the demo's vehicles: API → gateway → WebSocket → simulated car → REPLY → API.

(a) open loop: `--rate` requests/s (1,000) for `--duration` s from `bench/loadgen.py`, p50/p99
    latency; the baseline is the same schedule against `GET /status`.
(b) closed loop: `--connections` clients back to back (wrk with a Lua script if installed, else
    `bench/loadgen.py`), commands/s; the baseline is `GET /status` the same way. Alternating runs,
    medians.

    python bench/commands.py [--quick] [--server demo|serve]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

COMMANDS = ("flash_lights", "honk_horn")
TARGET_RATE = 1_000
TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0
TARGET_MAX = 3_000
OPEN_POOL = 64
CLOSED_CONNECTIONS = 32


def command_paths(vins: list[str]) -> list[str]:
    return [
        f"/api/1/vehicles/{vin}/command/{COMMANDS[i % len(COMMANDS)]}" for i, vin in enumerate(vins)
    ] + [
        f"/api/1/vehicles/{vin}/command/{COMMANDS[(i + 1) % len(COMMANDS)]}"
        for i, vin in enumerate(vins)
    ]


def check_command(target: h.Target, path: str) -> str | None:
    """One command end to end; the car's refusal (e.g. honking while driving) is still a trip."""
    headers = {**target.auth, "Content-Type": "application/json"}
    status, body = h.http_post(target.base_url + path, b"{}", headers)
    response = json.loads(body).get("response") if status == 200 else None
    if not isinstance(response, dict) or "result" not in response:
        raise h.BenchError(f"POST {path} answered {status}: {body[:300]!r}")
    return None if response["result"] else f"{path.rsplit('/', 1)[1]}: {response['reason']}"


@dataclass
class OpenLoop:
    p50_ms: float
    p99_ms: float
    achieved: float
    completed: int
    sent: int
    failed: int
    lag_p99_ms: float

    @classmethod
    def from_output(cls, out: dict[str, Any]) -> OpenLoop:
        ok = sum(v for k, v in out["statuses"].items() if k.startswith("2"))
        return cls(
            out["p50_ms"] or float("nan"),
            out["p99_ms"] or float("nan"),
            out["completion_rate"],
            ok,
            out["sent"],
            out["sent"] - ok,
            out["scheduler_lag_p99_ms"] or 0.0,
        )

    def describe(self) -> str:
        return (
            f"p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, {self.completed:,}/"
            f"{self.sent:,} ok at {self.achieved:,.0f}/s"
        )


def open_loop(
    target: h.Target, paths: list[str], *, rate: float, duration_s: float, post: bool
) -> OpenLoop:
    args = [
        "open",
        "--port",
        str(target.port),
        "--rate",
        str(rate),
        "--duration",
        str(duration_s),
        "--connections",
        str(OPEN_POOL),
        "--timeout",
        "15",
    ]
    for path in paths:
        args += ["--path", path]
    if post:
        args += [
            "--method",
            "POST",
            "--body",
            "{}",
            "--header",
            f"Authorization: Bearer {target.token}",
        ]
    return OpenLoop.from_output(h.run_loadgen(args, duration_s + 60))


def wrk_script(root: Path, paths: list[str]) -> Path:
    """A wrk script that POSTs `{}` to each path in turn (wrk's -H adds the bearer token)."""
    script = root / "commands.lua"
    listed = ", ".join(json.dumps(p) for p in paths)
    script.write_text(
        'wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"local paths = {{{listed}}}\nlocal n = 0\n"
        "request = function()\n  n = n % #paths + 1\n  return wrk.format(nil, paths[n])\nend\n"
    )
    return script


def closed_loop(
    target: h.Target,
    paths: list[str] | None,
    *,
    duration_s: float,
    connections: int,
    script: Path | None,
) -> tuple[float, int]:
    """Successful requests/s with `connections` clients back to back; plus failures."""
    if h.wrk_path() is not None:
        headers = target.auth if paths else None
        result = h.run_wrk(
            target.base_url + (paths[0] if paths else "/status"),
            duration_s=duration_s,
            connections=connections,
            headers=headers,
            script=script if paths else None,
        )
        ok_share = 1 - result.non_2xx / result.requests if result.requests else 0.0
        return result.rps * ok_share, result.non_2xx + result.socket_errors
    args = [
        "closed",
        "--port",
        str(target.port),
        "--connections",
        str(connections),
        "--duration",
        str(duration_s),
    ]
    for path in paths or ["/status"]:
        args += ["--path", path]
    if paths:
        args += [
            "--method",
            "POST",
            "--body",
            "{}",
            "--header",
            f"Authorization: Bearer {target.token}",
        ]
    out = h.run_loadgen(args, duration_s + 60)
    ok = sum(v for k, v in out["statuses"].items() if k.startswith("2"))
    return ok / out["duration_s"], out["completed"] - ok + sum(out["errors"].values())


def run(
    quick: bool = False,
    server: str = "demo",
    vehicles: int = 8,
    rate: float = TARGET_RATE,
    duration_s: float | None = None,
    connections: int = CLOSED_CONNECTIONS,
    repeats: int | None = None,
) -> list[h.Row]:
    duration_s = duration_s or (3.0 if quick else 5.0)
    repeats = repeats or (2 if quick else 3)
    with h.workspace("p2") as (root, procs):
        target = h.start_target(root, procs, mode=server, vehicles=vehicles)
        h.log(f"P2: {target.describe()} at {target.base_url}")
        paths = command_paths(target.vins)
        refusals = [r for r in (check_command(target, p) for p in paths) if r]
        if refusals:
            h.log(
                "P2: the simulated cars refuse some commands (a full round trip all the same): "
                + ", ".join(sorted(set(refusals)))
            )
        nagle = h.nagle_probe(target.base_url)

        h.log(f"P2 open loop: {rate:g}/s for {duration_s:g} s against /status, then commands")
        bare_open = open_loop(target, ["/status"], rate=rate, duration_s=duration_s, post=False)
        h.log(f"P2 open loop /status: {bare_open.describe()}")
        cmd_open = open_loop(target, paths, rate=rate, duration_s=duration_s, post=True)
        h.log(f"P2 open loop commands: {cmd_open.describe()}")

        script = wrk_script(root, paths)
        bare_runs: list[float] = []
        cmd_runs: list[float] = []
        failures = 0
        cpu_runs: list[dict[str, float]] = []
        for index in range(repeats):
            rps, bad = closed_loop(
                target, None, duration_s=duration_s, connections=connections, script=None
            )
            bare_runs.append(rps)
            with h.cpu_meter(target.processes()) as shares:
                rps, bad = closed_loop(
                    target, paths, duration_s=duration_s, connections=connections, script=script
                )
            cpu_runs.append(shares)
            cmd_runs.append(rps)
            failures += bad
            h.log(
                f"P2 closed loop run {index + 1}/{repeats}: /status {bare_runs[-1]:,.0f} "
                f"req/s, commands {cmd_runs[-1]:,.0f}/s"
            )
            if not target.server.alive():
                raise h.BenchError(f"the server died under load:\n{target.server.log_tail()}")
        problems = h.server_problems(target.server)
    cpu = {name: h.median([r.get(name, 0.0) for r in cpu_runs]) for name in cpu_runs[-1]}
    return rows_for(
        target,
        rate,
        duration_s,
        connections,
        repeats,
        bare_open,
        cmd_open,
        bare_runs,
        cmd_runs,
        failures,
        nagle,
        problems,
        cpu,
    )


def rows_for(
    target: h.Target,
    rate: float,
    duration_s: float,
    connections: int,
    repeats: int,
    bare_open: OpenLoop,
    cmd_open: OpenLoop,
    bare_runs: list[float],
    cmd_runs: list[float],
    failures: int,
    nagle: str | None,
    problems: list[str],
    cpu: dict[str, float],
) -> list[h.Row]:
    kept_up = cmd_open.failed == 0 and cmd_open.achieved >= 0.95 * rate
    open_notes = [
        f"{target.describe()}; {len(target.vins)} vehicles x {len(COMMANDS)} commands in turn; "
        f"open loop from bench/loadgen.py ({OPEN_POOL} keep-alive connections), latency from "
        f"release to last byte; scheduler lag p99 {cmd_open.lag_p99_ms:.2f} ms",
        f"commands: {cmd_open.describe()}; /status: {bare_open.describe()}",
    ]
    if not kept_up:
        open_notes.append(
            f"the server did NOT keep up with {rate:,.0f}/s: {cmd_open.completed:,} of "
            f"{cmd_open.sent:,} commands succeeded, completion rate {cmd_open.achieved:,.0f}/s; "
            "latencies include the queue that built up"
        )
    if nagle:
        open_notes.append(nagle)
    if problems:
        open_notes.append("server log: " + " | ".join(problems[-4:]))
    bare_max, cmd_max = h.median(bare_runs), h.median(cmd_runs)
    closed_notes = [
        f"{connections} clients back to back ({'wrk + Lua' if h.wrk_path() else 'loadgen'}), "
        f"{repeats} alternating runs x {duration_s:g} s, medians; commands "
        + ", ".join(f"{v:,.0f}" for v in cmd_runs)
        + "; /status "
        + ", ".join(f"{v:,.0f}" for v in bare_runs),
        f"CPU during the command runs (share of one core): {h.describe_cpu(cpu)}",
    ]
    if failures:
        closed_notes.append(f"{failures} command requests failed (non-2xx or socket errors)")
    p50_ratio = cmd_open.p50_ms / bare_open.p50_ms if bare_open.p50_ms else None
    p99_ratio = cmd_open.p99_ms / bare_open.p99_ms if bare_open.p99_ms else None
    p50_ok = kept_up and cmd_open.p50_ms <= TARGET_P50_MS
    p99_ok = kept_up and cmd_open.p99_ms <= TARGET_P99_MS
    return [
        h.Row(
            "P2a",
            f"command round trip p50 @ {rate:,.0f}/s",
            f"{cmd_open.p50_ms:.2f} ms",
            f"{bare_open.p50_ms:.2f} ms /status",
            p50_ratio,
            "x bare (lower is better)",
            f"p50 ≤ {TARGET_P50_MS:g} ms",
            h.verdict(p50_ok),
            open_notes,
        ),
        h.Row(
            "P2a",
            f"command round trip p99 @ {rate:,.0f}/s",
            f"{cmd_open.p99_ms:.2f} ms",
            f"{bare_open.p99_ms:.2f} ms /status",
            p99_ratio,
            "x bare (lower is better)",
            f"p99 ≤ {TARGET_P99_MS:g} ms",
            h.verdict(p99_ok),
        ),
        h.Row(
            "P2b",
            "commands/s, closed loop",
            f"{cmd_max:,.0f} /s",
            f"{bare_max:,.0f} req/s /status",
            cmd_max / bare_max if bare_max else None,
            "of bare",
            f"≥ {TARGET_MAX:,}/s per process",
            h.verdict(cmd_max >= TARGET_MAX),
            closed_notes,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, 2 closed-loop repeats")
    parser.add_argument(
        "--server",
        choices=("demo", "serve"),
        default="demo",
        help="demo: `flotta demo`; serve: `flotta serve` + `flotta sim`",
    )
    parser.add_argument("--vehicles", type=int, default=8)
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="open-loop requests/s")
    parser.add_argument("--duration", type=float, default=None, help="seconds per run")
    parser.add_argument("--connections", type=int, default=CLOSED_CONNECTIONS)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    print(h.env_summary())
    rows = run(
        args.quick,
        args.server,
        args.vehicles,
        args.rate,
        args.duration,
        args.connections,
        args.repeats,
    )
    h.print_rows(rows, "P2 command round trip")


if __name__ == "__main__":
    main()
