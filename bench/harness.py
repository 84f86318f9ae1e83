"""Shared pieces of the benchmarks: subprocesses, the demo, wrk, RSS and the result rows.

Everything here talks to 127.0.0.1 only, and every wait is bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
HOST = "127.0.0.1"

SHARED_CORES_NOTE = (
    f"note: load generator, simulator and server share this machine's {os.cpu_count()} cores; "
    "absolute figures are pessimistic, ratios against the same-run baseline are the signal"
)


def flotta_command() -> list[str]:
    """The `flotta` console script next to this interpreter, or the same entry point via -c."""
    script = Path(PYTHON).parent / "flotta"
    if script.exists():
        return [str(script)]
    return [PYTHON, "-c", "from flotta.cli.main import main; main()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- subprocesses


@dataclass
class Proc:
    """A child in its own session, its output in a log file; stopped by its own pid only."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self, max_bytes: int = 4_000_000) -> str:
        """The log's last `max_bytes`, with access tokens (the demo banner prints one) cut out."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(max(0, self.log_path.stat().st_size - max_bytes))
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        text = re.sub(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", "<token>", text)
        return "\n".join(
            line for line in text.splitlines() if not re.fullmatch(r"[\w.\-]{40,}", line.strip())
        )

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGINT (a clean Ctrl-C), then, if it lingers, SIGKILL to its own process group."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout_s)
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)  # the group we created, by its id
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(5)


def spawn(name: str, argv: Sequence[str], log_dir: Path, env: dict[str, str] | None = None) -> Proc:
    log_path = log_dir / f"{name}.log"
    handle = log_path.open("wb")
    full_env = {
        # Throughput runs send thousands of requests a second to one car: far past the
        # reference's rate limits, so they are off unless a run (or the caller) asks for them.
        "FLOTTA_RATELIMIT__ENABLED": "false",
        # Metering stays on, but a threshold no run reaches: the demo developer's 100.00 would
        # disable the demo app after 50,000 data requests, ten seconds of a P3 run.
        "FLOTTA_BILLING__THRESHOLD": "1000000.00",
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        **(env or {}),
    }
    popen = subprocess.Popen(
        list(argv),
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env=full_env,
        start_new_session=True,
    )
    handle.close()
    return Proc(name, popen, log_path)


@contextlib.contextmanager
def workspace(prefix: str) -> Iterator[tuple[Path, list[Proc]]]:
    """A temp dir and a list of children; on exit every child is stopped and the dir removed."""
    root = Path(tempfile.mkdtemp(prefix=f"flotta-bench-{prefix}-"))
    procs: list[Proc] = []
    try:
        yield root, procs
    finally:
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(root, ignore_errors=True)


class BenchError(RuntimeError):
    """A benchmark could not produce its figure; the message says why."""


def wait_until(
    predicate: Any, timeout_s: float, what: str, proc: Proc | None = None, interval_s: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and not proc.alive():
            raise BenchError(
                f"{proc.name} exited (rc={proc.popen.returncode}) while waiting for "
                f"{what}; log tail:\n{proc.log_tail()}"
            )
        time.sleep(interval_s)
    tail = f"; log tail:\n{proc.log_tail()}" if proc is not None else ""
    raise BenchError(f"timed out after {timeout_s:.0f} s waiting for {what}{tail}")


def http_get(
    url: str, timeout_s: float = 2.0, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def http_post(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float = 15.0
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def answers_ok(url: str) -> bool:
    try:
        status, body = http_get(url, timeout_s=1.0)
    except OSError:
        return False
    return status == 200 and body.strip() == b"ok"


# ---------------------------------------------------------------- the demo


@dataclass
class Demo:
    proc: Proc
    data_dir: Path
    info: dict[str, Any]

    @property
    def base_url(self) -> str:
        return str(self.info["base_url"])

    @property
    def token(self) -> str:
        return str(self.info["access_token"])

    @property
    def vins(self) -> list[str]:
        return list(self.info["vehicles"])

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1].split("/")[0])


def start_demo(
    root: Path,
    procs: list[Proc],
    *,
    vehicles: int,
    timeout_s: float = 60.0,
    env: dict[str, str] | None = None,
    name: str = "flotta-demo",
) -> Demo:
    """`flotta demo --port 0`, instant wake; ready once demo.json exists and /status answers."""
    data_dir = root / ("data" if name == "flotta-demo" else f"{name}-data")
    argv = [
        *flotta_command(),
        "demo",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--vehicles",
        str(vehicles),
        "--wake-profile",
        "instant",
    ]
    proc = spawn(name, argv, root, env=env)
    procs.append(proc)
    demo_json = data_dir / "demo.json"
    wait_until(demo_json.exists, timeout_s, "demo.json", proc)
    info = json.loads(demo_json.read_text())
    wait_until(lambda: answers_ok(info["base_url"] + "/status"), 15, "GET /status", proc)
    return Demo(proc, data_dir, info)


# ---------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    rps: float
    requests: int
    non_2xx: int
    socket_errors: int
    p50_ms: float | None
    p99_ms: float | None
    raw: str = field(repr=False)


def wrk_path() -> str | None:
    """Debian's wrk, unless FLOTTA_BENCH_NO_WRK=1 asks for the Python load generator."""
    if os.environ.get("FLOTTA_BENCH_NO_WRK") == "1":
        return None
    return shutil.which("wrk")


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not rps or not total:
        raise BenchError(f"could not read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", output, flags=re.M))
    return WrkResult(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        p50_ms=_to_ms(percentiles["50"]) if "50" in percentiles else None,
        p99_ms=_to_ms(percentiles["99"]) if "99" in percentiles else None,
        raw=output,
    )


def run_wrk(
    url: str,
    *,
    duration_s: float,
    connections: int,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
    threads: int = 1,
) -> WrkResult:
    """One wrk run against loopback; wrk's own -d bounds it, the subprocess timeout backs it up."""
    binary = wrk_path()
    if binary is None:
        raise BenchError("wrk is not installed")
    argv = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration_s + 30, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


# ---------------------------------------------------------------- the Python load generator


def run_loadgen(args: Sequence[str], timeout_s: float) -> dict[str, Any]:
    """Run bench/loadgen.py in its own process and return the JSON it prints."""
    argv = [PYTHON, str(BENCH_DIR / "loadgen.py"), *args]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=REPO
    )
    if done.returncode != 0:
        raise BenchError(f"loadgen failed ({done.returncode}): {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- memory


def rss_kib(pid: int) -> int:
    """Resident set size from /proc/PID/status (VmRSS, in KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def established_to_port(port: int) -> int:
    """Established TCP connections whose local port is `port` (the server side of each link)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as handle:
            next(handle, None)
            for line in handle:
                parts = line.split()
                if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


# ---------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the summary: a figure, its same-run baseline, their ratio, and the target."""

    target_id: str
    what: str
    figure: str
    baseline: str
    ratio: float | None
    ratio_note: str
    target: str
    verdict: str
    notes: list[str] = field(default_factory=list)


def p5_cost_row(
    what: str, figure: str, baseline: str, ratio: float, notes: list[str] | None = None
) -> Row:
    """A P5 cost against both off (CPU, instructions): lower is better, and no target of its
    own, since P5's target is throughput."""
    return Row(
        target_id="P5",
        what=what,
        figure=figure,
        baseline=f"{baseline} both off",
        ratio=ratio,
        ratio_note="of both off (lower is better)",
        target="— (P5's is throughput)",
        verdict=verdict(None),
        notes=notes or [],
    )


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("meets" if ok else "MISSES")


def print_rows(rows: Sequence[Row], title: str = "") -> None:
    headers = ("#", "what", "figure", "baseline (same run)", "ratio", "target", "vs target")
    table = [
        (
            r.target_id,
            r.what,
            r.figure,
            r.baseline,
            "—" if r.ratio is None else f"{r.ratio:.2f} {r.ratio_note}".strip(),
            r.target,
            r.verdict,
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)
    ]
    if title:
        print(f"\n{title}")
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row_text in table:
        print("  ".join(c.ljust(w) for c, w in zip(row_text, widths, strict=True)))
    notes = [(r.target_id, n) for r in rows for n in r.notes]
    for target_id, note in notes:
        print(f"  [{target_id}] {note}")
    print(SHARED_CORES_NOTE)
    sys.stdout.flush()


def env_summary() -> str:
    load = os.getloadavg()
    return (
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"load generator: {'wrk (' + str(wrk_path()) + ')' if wrk_path() else 'Python'}"
    )


# ---------------------------------------------------------------- `flotta serve` and `flotta sim`


def serve_env(data_dir: Path, port: int) -> dict[str, str]:
    """`flotta serve` on the demo's settings (demo secret allowed), quiet logs, on loopback."""
    return {
        "FLOTTA_DEMO": "1",
        "FLOTTA_DATA_DIR": str(data_dir),
        "FLOTTA_PORT": str(port),
        "FLOTTA_HOST": HOST,
        "FLOTTA_LOG_LEVEL": "warning",
    }


def start_serve(root: Path, procs: list[Proc], timeout_s: float = 60.0) -> tuple[Proc, int, Path]:
    """`flotta serve` on a free port with its own data dir; ready when /status answers."""
    data_dir = root / "data"
    port = free_port()
    proc = spawn("flotta-serve", [*flotta_command(), "serve"], root, env=serve_env(data_dir, port))
    procs.append(proc)
    wait_until(lambda: answers_ok(f"http://{HOST}:{port}/status"), timeout_s, "GET /status", proc)
    return proc, port, data_dir


def start_sim(
    root: Path, procs: list[Proc], *, port: int, data_dir: Path, vehicles: int, tick_s: float
) -> Proc:
    """`flotta sim`: provisions `vehicles` in the server's SQLite DB, then connects them."""
    argv = [
        *flotta_command(),
        "sim",
        "--connect",
        f"ws://{HOST}:{port}",
        "--vehicles",
        str(vehicles),
        "--data-dir",
        str(data_dir),
        "--tick",
        str(tick_s),
        "--wake-profile",
        "instant",
    ]
    proc = spawn("flotta-sim", argv, root)
    procs.append(proc)
    return proc


def log_contains(proc: Proc, text: str) -> bool:
    try:
        return text in proc.log_path.read_text(errors="replace")
    except OSError:
        return False


def settled_rss(
    pid: int,
    timeout_s: float,
    *,
    window: int = 3,
    tolerance: float = 0.005,
    interval_s: float = 1.0,
) -> tuple[int, bool]:
    """RSS once `window` samples a second apart agree within `tolerance`; (last, settled?)."""
    samples: list[int] = []
    deadline = time.monotonic() + timeout_s
    while True:
        samples.append(rss_kib(pid))
        recent = samples[-window:]
        if len(recent) == window and (max(recent) - min(recent)) <= tolerance * max(recent):
            return recent[-1], True
        if time.monotonic() + interval_s > deadline:
            return samples[-1], False
        time.sleep(interval_s)


# ---------------------------------------------------------------- the server under load


@dataclass
class Target:
    """A Flotta server with connected simulated vehicles, ready for API load."""

    mode: str  # "demo": `flotta demo` (sim in-process); "serve": `flotta serve` + `flotta sim`
    server: Proc
    base_url: str
    token: str
    vins: list[str]
    helpers: list[Proc] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1].split("/")[0])

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def processes(self) -> dict[str, Proc]:
        named = {"server": self.server}
        named.update({proc.name: proc for proc in self.helpers})
        return named

    def describe(self) -> str:
        if self.mode == "demo":
            return (
                f"`flotta demo` ({len(self.vins)} vehicles simulated in the server process, "
                "instant wake)"
            )
        return (
            f"`flotta serve` + `flotta sim` ({len(self.vins)} vehicles simulated in a "
            "second process)"
        )


def start_target(root: Path, procs: list[Proc], *, mode: str, vehicles: int) -> Target:
    if mode == "demo":
        demo = start_demo(root, procs, vehicles=vehicles)
        return Target("demo", demo.proc, demo.base_url, demo.token, demo.vins)
    if mode != "serve":
        raise ValueError(mode)
    server, port, data_dir = start_serve(root, procs)
    sim = start_sim(root, procs, port=port, data_dir=data_dir, vehicles=vehicles, tick_s=1.0)
    wait_until(
        lambda: log_contains(sim, "simulated vehicles connected"),
        90,
        "the simulated vehicles to connect",
        sim,
        interval_s=0.2,
    )
    minted = subprocess.run(
        [*flotta_command(), "token", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1", **serve_env(data_dir, port)},
    )
    if minted.returncode != 0:
        raise BenchError(f"flotta token failed: {minted.stdout}{minted.stderr}")
    token = minted.stdout.strip().splitlines()[-1]
    base_url = f"http://{HOST}:{port}"
    status, body = http_get(
        f"{base_url}/api/1/vehicles", headers={"Authorization": f"Bearer {token}"}
    )
    if status != 200:
        raise BenchError(f"GET /api/1/vehicles answered {status}: {body[:300]!r}")
    vins = [v["vin"] for v in json.loads(body)["response"]]
    return Target("serve", server, base_url, token, vins, [sim])


def nagle_probe(base_url: str) -> str | None:
    """One connection, back to back: ~40 ms per answer is Nagle + delayed ACK, not work."""
    if wrk_path() is not None:
        result = run_wrk(base_url + "/status", duration_s=1, connections=1)
        p50 = result.p50_ms
    else:
        port = int(base_url.rsplit(":", 1)[1])
        out = run_loadgen(
            [
                "closed",
                "--port",
                str(port),
                "--path",
                "/status",
                "--connections",
                "1",
                "--duration",
                "1",
                "--warmup",
                "0.2",
            ],
            30,
        )
        p50 = out["p50_ms"]
    if p50 is not None and p50 >= 20:
        return (
            f"GET /status on one keep-alive connection takes {p50:.1f} ms (p50): the 40 ms "
            "signature of Nagle + delayed ACK — accepted sockets lack TCP_NODELAY. "
            "Every figure against this server is capped by it"
        )
    return None


def server_problems(proc: Proc) -> list[str]:
    """What the server's log says went wrong, summarised: exception type x count, where."""
    text = proc.log_text().splitlines()
    counts: dict[str, int] = {}
    index = 0
    while index < len(text):
        line = text[index]
        if line.startswith("Traceback"):
            index += 1
            ours = ""
            while index < len(text) and (text[index].startswith(" ") or not text[index]):
                if 'File "' in text[index] and "/flotta/" in text[index]:
                    ours = text[index].strip().replace('File "', "").replace('", line ', ":")
                index += 1
            final = text[index].strip() if index < len(text) else "?"
            key = f"{final[:160]}" + (
                f" (last flotta frame: {ours.split('/flotta/')[-1]})" if ours else ""
            )
            counts[key] = counts.get(key, 0) + 1
            continue
        lowered = line.lower()
        if (
            "error" in lowered or "warning" in lowered or "critical" in lowered
        ) and "exception in asgi application" not in lowered:
            key = re.sub(r"^\S+Z? ", "", line.strip())[:160]
            counts[key] = counts.get(key, 0) + 1
        index += 1
    return [f"{count} x {what}" for what, count in counts.items()]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def cpu_meter(procs: dict[str, Proc]) -> Iterator[dict[str, float]]:
    """Share of one core each process used inside the block (filled in on exit)."""
    shares: dict[str, float] = {}
    start = {name: cpu_seconds(p.pid) for name, p in procs.items() if p.alive()}
    began = time.monotonic()
    try:
        yield shares
    finally:
        elapsed = max(time.monotonic() - began, 1e-9)
        for name, used in start.items():
            with contextlib.suppress(OSError):
                shares[name] = (cpu_seconds(procs[name].pid) - used) / elapsed


def describe_cpu(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
