"""P1: streamed signals ingested, metered and delivered to one consumer, against a bare loop.

Flotta: `flotta serve` (demo settings, its own data dir, prepared with one owner, N consented
cars, one third-party app and a synced streaming config per car). N device clients in a second
process stream STREAM frames (fleet-telemetry `V` records of K signals each, built by
`wire.encode_data`) and resend what is not acknowledged, as a car does; a consumer in a third
process reads the app's SSE stream (partner token, protobuf payloads) and counts every signal.
Baseline: the same clients send the same frames to a bare uvicorn WebSocket loop that counts.

    python bench/telemetry.py [--quick] [--cars 50] [--signals 20] [--duration 5]

Helper roles of this file, each started in its own process by the benchmark:
`clients`, `consumer`, `bare-server`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

TARGET_SIGNALS_S = 500_000
TARGET_RATIO = 0.5
FIELDS = [
    "VehicleSpeed", "Odometer", "BatteryLevel", "EstBatteryRange", "Soc", "PackVoltage",
    "PackCurrent", "ChargeLimitSoc", "InsideTemp", "OutsideTemp", "IdealBatteryRange",
    "RatedRange", "EnergyRemaining", "ACChargingPower", "DCChargingPower", "ChargerVoltage",
    "BrakePedalPos", "PedalPosition", "LateralAcceleration", "LongitudinalAcceleration",
]  # fmt: skip
TXID_MARK = b"TXID~~~~~~~~"  # a txid of fixed width, so a frame is a template plus its txid
TEMPLATES = 16
RESEND_AFTER_S = 5.0
DRAIN_S = 45.0
SSE_PATH = "/flotta/v1/telemetry/stream"


# ---------------------------------------------------------------- role: device clients


def frame_templates(
    vin: str, config_id: int, signals: int, resend: bool
) -> list[tuple[bytes, bytes]]:
    """(head, tail) of STREAM frames with varied values; head + txid + tail is the frame
    `wire.encode_data` + `protocol.encode` give for that txid (checked once per car)."""
    from flotta.gateway import protocol
    from flotta.gateway.protocol import FrameType
    from flotta.telemetry import wire
    from flotta.telemetry.emitter import TelemetryRecord

    if signals > len(FIELDS):
        raise SystemExit(f"at most {len(FIELDS)} signals per record")
    now = time.time()
    out = []
    for index in range(TEMPLATES):
        values: dict[str, Any] = {n: 10.0 + index * 1.25 + k for k, n in enumerate(FIELDS)}
        record = TelemetryRecord(
            seq=index, created_at_s=now + index, data=dict(list(values.items())[:signals]),
            is_resend=resend,
        )  # fmt: skip
        body = wire.encode_data(record, vin=vin, prefer_typed=True, txid=TXID_MARK)
        frame = protocol.encode(FrameType.STREAM, body, config_id)
        if frame.count(TXID_MARK) != 1:
            raise SystemExit("txid marker is not unique in the frame")
        head, tail = frame.split(TXID_MARK)
        real = protocol.encode(
            FrameType.STREAM,
            wire.encode_data(record, vin=vin, prefer_typed=True, txid=b"%012d" % 7),
            config_id,
        )
        if head + b"%012d" % 7 + tail != real:
            raise SystemExit("template frame differs from wire.encode_data's")
        out.append((head, tail))
    return out


class Car:
    """One device link streaming records, keeping at most `window` unacknowledged."""

    def __init__(self, spec: dict[str, Any], args: argparse.Namespace) -> None:
        self.vin: str = spec["vin"]
        self.credential: str = spec["credential"]
        self.config_id: int = spec["config_id"]
        self.args = args
        self.fresh = frame_templates(self.vin, self.config_id, args.signals, resend=False)
        self.again = frame_templates(self.vin, self.config_id, args.signals, resend=True)
        self.unacked: dict[bytes, tuple[int, float]] = {}
        self.slots = asyncio.Semaphore(args.window)
        self.sent = self.resent = self.acked = 0
        self.ws: Any = None

    def frame(self, seq: int, resend: bool) -> bytes:
        head, tail = (self.again if resend else self.fresh)[seq % TEMPLATES]
        return head + b"%012d" % seq + tail

    async def connect(self, url: str) -> None:
        import websockets

        from flotta.gateway import protocol
        from flotta.gateway.protocol import FrameType

        headers = {"Authorization": f"Bearer {self.credential}"}
        self.ws = await websockets.connect(
            url, additional_headers=headers, compression=None, max_size=None, open_timeout=30
        )
        if self.args.target == "flotta":
            hello = {"firmware": "bench", "power": "online", "config": {}, "stream_acks": "batched"}
            await self.ws.send(protocol.encode_json(FrameType.HELLO, hello))
            while protocol.decode(await self.ws.recv(), 10**7).type != FrameType.WELCOME:
                pass

    async def read(self) -> None:
        """Acks free window slots; configs are acknowledged as a car would."""
        from flotta.gateway import protocol
        from flotta.gateway.protocol import FrameType

        async for data in self.ws:
            frame = protocol.decode(data, 10**7)
            if frame.type == FrameType.STREAM_ACKS:
                for txid in protocol.decode_txids(frame.body):
                    if self.unacked.pop(txid, None):
                        self.acked += 1
                        self.slots.release()
            elif frame.type == FrameType.STREAM_ACK and self.unacked.pop(frame.body, None):
                self.acked += 1
                self.slots.release()
            elif frame.type == FrameType.TELEMETRY_CONFIG:
                version = json.loads(frame.body).get("version")
                ack = {"version": version, "ok": True, "error": None}
                await self.ws.send(
                    protocol.encode_json(FrameType.TELEMETRY_CONFIG_ACK, ack, frame.correlation_id)
                )

    async def stream(self, until: float) -> None:
        # Txids never repeat across runs: the gateway acks a repeated (config, txid) as a resend.
        seq = self.args.first_seq
        while time.monotonic() < until:
            if self.args.target == "flotta":
                await self.slots.acquire()
                self.unacked[b"%012d" % (seq + 1)] = (seq + 1, time.monotonic())
            seq += 1
            await self.ws.send(self.frame(seq, resend=False))
            self.sent += 1

    async def resend_overdue(self) -> None:
        now = time.monotonic()
        for txid, (seq, at) in list(self.unacked.items()):
            if now - at >= RESEND_AFTER_S:
                self.unacked[txid] = (seq, now)
                await self.ws.send(self.frame(seq, resend=True))
                self.resent += 1


async def run_clients(args: argparse.Namespace) -> None:
    specs = json.loads(await asyncio.to_thread(Path(args.cars_file).read_text))[: args.cars]
    cars = [Car(spec, args) for spec in specs]
    await asyncio.gather(*(car.connect(args.url) for car in cars))
    readers = [asyncio.create_task(car.read()) for car in cars]
    server_cpu = h.cpu_seconds(args.server_pid) if args.server_pid else 0.0
    started_wall, started, cpu_started = time.time(), time.monotonic(), time.process_time()
    until = started + args.duration
    await asyncio.gather(*(car.stream(until) for car in cars))
    sending_s = time.monotonic() - started
    # Is this process, or the server, the bottleneck while the records flow?
    sending_cpu_s = time.process_time() - cpu_started
    server_cpu = h.cpu_seconds(args.server_pid) - server_cpu if args.server_pid else 0.0
    deadline = time.monotonic() + DRAIN_S
    while args.target == "flotta" and any(c.unacked for c in cars):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
        for car in cars:
            await car.resend_overdue()
    drained_s = time.monotonic() - started
    for car in cars:
        await car.ws.close()
    for task in readers:
        task.cancel()
    sent = sum(c.sent for c in cars)
    print(json.dumps({
        "started_at": started_wall, "sending_s": sending_s, "drained_s": drained_s,
        "sending_cpu_s": sending_cpu_s, "server_sending_cpu_s": server_cpu,
        "records": sent, "signals": sent * args.signals, "acked": sum(c.acked for c in cars),
        "resent": sum(c.resent for c in cars), "unacked": sum(len(c.unacked) for c in cars),
        "frame_bytes": len(cars[0].frame(1, False)) if cars else 0,
    }), flush=True)  # fmt: skip


# ---------------------------------------------------------------- role: the app's consumer


class Consumer:
    """Reads the app's SSE stream, resuming from the last cursor, and counts what arrives."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.records = self.signals = self.duplicates = self.reconnects = 0
        self.cursor = 0
        self.last_at = 0.0
        self.closed: list[str] = []
        from tesla_protocol.telemetry import vehicle_data_pb2

        self.payload = vehicle_data_pb2.Payload()

    def status(self) -> None:
        body = json.dumps({
            "records": self.records, "signals": self.signals, "cursor": self.cursor,
            "last_at": self.last_at, "duplicates": self.duplicates,
            "reconnects": self.reconnects, "closed": self.closed[-3:],
        })  # fmt: skip
        tmp = Path(self.args.status_file + ".tmp")
        tmp.write_text(body)
        os.replace(tmp, self.args.status_file)

    def event(self, block: bytes) -> None:
        """One SSE event. Read with `bytes` methods and one reused Payload: this process shares
        the 2 cores with the server, so the less CPU it takes, the less it skews the figure."""
        head, _, data = block.rpartition(b"\ndata: ")
        if not head.startswith(b"id: "):
            if head.endswith(b"event: closed"):
                self.closed.append(data.decode())
            return  # a comment (keep-alive) or the retry hint
        cursor = int(head[4 : head.index(b"\n")])
        if cursor <= self.cursor:
            self.duplicates += 1
            return
        self.payload.ParseFromString(base64.b64decode(data))
        self.cursor, self.last_at = cursor, time.time()
        self.records += 1
        self.signals += len(self.payload.data)

    async def follow(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.args.token}"}
        async with httpx.AsyncClient(base_url=self.args.base_url, timeout=None) as client:
            while True:
                params = {"format": "protobuf", "cursor": str(self.cursor)}
                async with client.stream("GET", SSE_PATH, headers=headers, params=params) as r:
                    if r.status_code != 200:
                        raise SystemExit(f"stream answered {r.status_code}: {await r.aread()!r}")
                    buffer = b""
                    async for chunk in r.aiter_raw():
                        buffer += chunk
                        *blocks, buffer = buffer.split(b"\n\n")
                        for block in blocks:
                            self.event(block)
                self.reconnects += 1

    async def run(self) -> None:
        task = asyncio.create_task(self.follow())
        try:
            while not task.done():
                self.status()
                await asyncio.sleep(0.1)
            task.result()
        finally:
            self.status()


# ---------------------------------------------------------------- role: the bare receive loop


def run_bare_server(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from bare_ws_server import MAX_FRAME_BYTES

    counts = {"frames": 0, "bytes": 0, "last_at": 0.0}

    async def status(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def count(request: Request) -> JSONResponse:
        return JSONResponse(counts)

    async def connect(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_bytes()
                counts["frames"] += 1
                counts["bytes"] += len(data)
                counts["last_at"] = time.time()
        except WebSocketDisconnect:
            return

    routes = [Route("/status", status), Route("/count", count)]
    app = Starlette(routes=[*routes, WebSocketRoute("/gateway/v1/connect", connect)])
    uvicorn.run(
        app, host=h.HOST, port=port, log_level="warning", ws_max_size=MAX_FRAME_BYTES,
        ws_per_message_deflate=False,
    )  # fmt: skip


# ---------------------------------------------------------------- preparing the server's data


async def prepare(data_dir: Path, cars: int, signals: int) -> dict[str, Any]:
    """One owner's cars, consented to one third-party app, each with a synced config."""
    from flotta.auth.scopes import OWNER_SCOPES
    from flotta.clock import SystemClock
    from flotta.db.engine import make_engine, make_sessionmaker
    from flotta.db.migrate import upgrade_to_head
    from flotta.devices.service import ensure_owner, provision_vehicle
    from flotta.oauth.models import ConsentGrant
    from flotta.oauth.service import Lifetimes, OAuthService
    from flotta.settings import Settings
    from flotta.sim.vehicle_models import make_vin
    from flotta.telemetry.models import TelemetryConfigRow

    settings = Settings(demo=True, data_dir=data_dir)
    engine = make_engine(settings.database_url)
    clock = SystemClock()
    now = clock.now()
    fields = {name: {"interval_seconds": 1} for name in FIELDS[:signals]}
    try:
        await upgrade_to_head(engine)
        async with make_sessionmaker(engine)() as s, s.begin():
            owner = await ensure_owner(s, "fleet@bench.flotta.local", "Bench Fleet", clock)
            developer = await ensure_owner(s, "dev@bench.flotta.local", "Bench Dev", clock)
            auth = settings.auth
            service = OAuthService(
                s, secret_key=settings.secret_key, clock=clock, region=auth.region,
                lifetimes=Lifetimes(auth.refresh_token_ttl_s, auth.refresh_grace_s),
            )  # fmt: skip
            app, secret = await service.register_client(
                name="Telemetry bench", owner_id=developer.id, confidential=True,
                scopes=list(OWNER_SCOPES), redirect_uris=["https://bench.example.com/cb"],
            )  # fmt: skip
            app.partner_registered_at = now
            made = []
            for index in range(cars):
                made.append(
                    await provision_vehicle(
                        s,
                        owner=owner,
                        vin=make_vin("modely", 500_000 + index),
                        model="modely",
                        display_name=f"bench {index}",
                        option_codes="",
                        config={},
                        secret_key=settings.secret_key,
                        clock=clock,
                    )
                )
            configs = [
                TelemetryConfigRow(
                    client_id=app.client_id,
                    vin=m.vehicle.vin,
                    config={"fields": fields},
                    version=1,
                    status="synced",
                    created_at=now,
                    updated_at=now,
                    synced_at=now,
                )
                for m in made
            ]
            grant = ConsentGrant(
                user_id=owner.id, client_pk=app.id, scopes=list(OWNER_SCOPES),
                devices=[f"vehicle:{m.vehicle.id}" for m in made], created_at=now, updated_at=now,
            )  # fmt: skip
            s.add_all([grant, *configs])
            await s.flush()
            specs = [
                {"vin": m.vehicle.vin, "credential": m.credential, "config_id": c.id}
                for m, c in zip(made, configs, strict=True)
            ]
        return {"client_id": app.client_id, "client_secret": secret, "cars": specs}
    finally:
        await engine.dispose()


async def ledger_totals(data_dir: Path, client_id: str) -> tuple[int, int]:
    """(streaming signals metered in the usage ledger, signals in the record log) for the app."""
    from sqlalchemy import func, select

    from flotta.billing.models import UsageEventRow
    from flotta.db.engine import make_engine, make_sessionmaker
    from flotta.settings import Settings
    from flotta.telemetry.models import TelemetryRecordGroupRow

    engine = make_engine(Settings(demo=True, data_dir=data_dir).database_url)
    try:
        async with make_sessionmaker(engine)() as s:
            metered = await s.scalar(
                select(func.sum(UsageEventRow.quantity)).where(
                    UsageEventRow.client_id == client_id, UsageEventRow.category == "streaming"
                )
            )
            stored = await s.scalar(
                select(func.sum(TelemetryRecordGroupRow.signals)).where(
                    TelemetryRecordGroupRow.client_id == client_id
                )
            )
        return int(metered or 0), int(stored or 0)
    finally:
        await engine.dispose()


def partner_token(base_url: str, client_id: str, secret: str) -> str:
    """The app's partner token, from the real token endpoint (client_credentials)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "audience": base_url,
    }
    body = urllib.parse.urlencode(form).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, answer = h.http_post(f"{base_url}/oauth2/v3/token", body, headers)
    if status != 200:
        raise h.BenchError(f"client_credentials answered {status}: {answer[:300]!r}")
    return str(json.loads(answer)["access_token"])


# ---------------------------------------------------------------- one run of each kind


def run_clients_proc(
    root: Path,
    target: str,
    url: str,
    args: argparse.Namespace,
    cars_file: Path,
    index: int,
    server: h.Proc,
) -> dict[str, Any]:
    argv = [
        h.PYTHON, __file__, "clients", "--target", target, "--url", url,
        "--cars-file", str(cars_file), "--cars", str(args.cars), "--signals", str(args.signals),
        "--duration", str(args.duration), "--window", str(args.window),
        "--first-seq", str(index * 100_000_000), "--server-pid", str(server.pid),
    ]  # fmt: skip
    proc = h.spawn(f"clients-{target}-{index}", argv, root)
    try:
        h.wait_until(
            lambda: not proc.alive(), args.duration + DRAIN_S + 60, "the clients", interval_s=0.1
        )
    finally:
        proc.stop()
    lines = [line for line in proc.log_text().splitlines() if line.startswith("{")]
    if proc.popen.returncode != 0 or not lines:
        raise h.BenchError(f"the device clients failed:\n{proc.log_tail()}")
    return dict(json.loads(lines[-1]))


def read_json(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        return dict(json.loads(path.read_text()))
    return {}


def flotta_run(
    root: Path,
    server: h.Proc,
    port: int,
    args: argparse.Namespace,
    cars_file: Path,
    status: Path,
    index: int,
) -> dict[str, Any]:
    """Stream to Flotta; done once the consumer holds every signal the clients sent."""
    before = read_json(status)
    sent = run_clients_proc(root, "flotta", f"ws://{h.HOST}:{port}/gateway/v1/connect", args,
                            cars_file, index, server)  # fmt: skip
    want = before.get("signals", 0) + sent["signals"]
    deadline = time.monotonic() + DRAIN_S
    while read_json(status).get("signals", 0) < want and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # anything beyond `want` would be a duplicate: let it show
    after = read_json(status)
    received = after.get("signals", 0) - before.get("signals", 0)
    records = after.get("records", 0) - before.get("records", 0)
    elapsed = max(after.get("last_at", 0.0) - sent["started_at"], 1e-9)
    return {**sent, "received_signals": received, "received_records": records,
            "rate": received / elapsed, "elapsed": elapsed, "consumer": after}  # fmt: skip


def bare_run(
    root: Path, bare: h.Proc, port: int, args: argparse.Namespace, cars_file: Path, index: int
) -> dict[str, Any]:
    """The same clients and frames to the bare loop; done once it counted every frame."""
    count_url = f"http://{h.HOST}:{port}/count"
    before = json.loads(h.http_get(count_url)[1])
    sent = run_clients_proc(root, "bare", f"ws://{h.HOST}:{port}/gateway/v1/connect", args,
                            cars_file, index, bare)  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        after = json.loads(h.http_get(count_url)[1])
        if after["frames"] - before["frames"] >= sent["records"]:
            break
        time.sleep(0.1)
    frames = after["frames"] - before["frames"]
    elapsed = max(after["last_at"] - sent["started_at"], 1e-9)
    received = frames * args.signals  # every frame carries K signals; the loop only counts
    return {**sent, "received_signals": received, "received_records": frames,
            "rate": received / elapsed, "elapsed": elapsed}  # fmt: skip


# ---------------------------------------------------------------- the benchmark


def start_helpers(
    root: Path, procs: list[h.Proc], base_url: str, token: str
) -> tuple[h.Proc, Path, h.Proc, int]:
    """The consumer on the app's stream, and the bare server; both ready."""
    status = root / "consumer.json"
    argv = [h.PYTHON, __file__, "consumer", "--base-url", base_url, "--status-file", str(status)]
    consumer = h.spawn("consumer", argv, root, env={"FLOTTA_BENCH_TOKEN": token})
    procs.append(consumer)
    h.wait_until(status.exists, 30, "the consumer to connect", consumer)
    bare_port = h.free_port()
    bare = h.spawn("bare-ws", [h.PYTHON, __file__, "bare-server", "--port", str(bare_port)], root)
    procs.append(bare)
    h.wait_until(lambda: h.answers_ok(f"http://{h.HOST}:{bare_port}/status"), 30, "bare", bare)
    return consumer, status, bare, bare_port


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with h.workspace("p1") as (root, procs):
        data_dir = root / "data"
        data_dir.mkdir(parents=True)
        prep = asyncio.run(prepare(data_dir, args.cars, args.signals))
        cars_file = root / "cars.json"
        cars_file.write_text(json.dumps(prep["cars"]))
        server, port, _ = h.start_serve(root, procs)
        base_url = f"http://{h.HOST}:{port}"
        token = partner_token(base_url, prep["client_id"], prep["client_secret"])
        consumer, status, bare, bare_port = start_helpers(root, procs, base_url, token)
        bare_runs: list[dict[str, Any]] = []
        flotta_runs: list[dict[str, Any]] = []
        cpu_runs: list[dict[str, float]] = []
        for index in range(args.repeats):
            with h.cpu_meter({"bare loop": bare}) as bare_shares:
                bare_runs.append(bare_run(root, bare, bare_port, args, cars_file, index))
            with h.cpu_meter({"server": server, "consumer": consumer}) as shares:
                flotta_runs.append(flotta_run(root, server, port, args, cars_file, status, index))
            cpu_runs.append({**shares, **bare_shares})
            h.log(
                f"P1 run {index + 1}/{args.repeats}: bare {bare_runs[-1]['rate']:,.0f}, "
                f"flotta {flotta_runs[-1]['rate']:,.0f} signals/s"
            )
            if not server.alive():
                raise h.BenchError(f"flotta serve died under load:\n{server.log_tail()}")
        consumer_state = read_json(status)
        problems = h.server_problems(server)
        server.stop()  # a clean stop commits whatever metering still holds
        metered, stored = asyncio.run(ledger_totals(data_dir, prep["client_id"]))
    return {
        "bare": bare_runs, "flotta": flotta_runs, "cpu": cpu_runs, "consumer": consumer_state,
        "metered": metered, "stored": stored, "problems": problems,
    }  # fmt: skip


def sending_share(runs: list[dict[str, Any]], key: str = "sending_cpu_s") -> float:
    """CPU while the clients send (theirs, or the server's), as a share of one core (median
    of the runs)."""
    return h.median([r[key] / max(r["sending_s"], 1e-9) for r in runs])


def counts_note(kind: str, runs: list[dict[str, Any]]) -> tuple[str, bool]:
    sent = sum(r["signals"] for r in runs)
    got = sum(r["received_signals"] for r in runs)
    same = sent == got
    where = "consumer (SSE)" if kind == "flotta" else "bare loop"
    return (
        f"{kind} signal counts: sent by the clients {sent:,}, received by the {where} {got:,} "
        + ("— equal" if same else f"— NOT EQUAL (difference {sent - got:,})"),
        same,
    )


def rows(args: argparse.Namespace, m: dict[str, Any]) -> list[h.Row]:
    bare = h.median([r["rate"] for r in m["bare"]])
    flotta = h.median([r["rate"] for r in m["flotta"]])
    ratio = flotta / bare if bare else None
    flotta_note, flotta_equal = counts_note("flotta", m["flotta"])
    bare_note, bare_equal = counts_note("bare", m["bare"])
    sent = sum(r["signals"] for r in m["flotta"])
    metered_equal = m["metered"] == sent and m["stored"] == sent
    cpu = {k: h.median([c.get(k, 0.0) for c in m["cpu"]]) for k in m["cpu"][-1]}
    fl = m["flotta"][-1]
    notes = [
        f"`flotta serve` + {args.cars} device clients (own process) streaming "
        f"{args.signals}-signal `V` records ({fl['frame_bytes']} bytes a frame), at most "
        f"{args.window} unacked each; one consumer (own process) on the app's SSE stream, "
        "protobuf payloads, partner token; "
        f"{args.repeats} interleaved runs x {args.duration:g} s; medians; signals/s = signals "
        "received ÷ (last received - first sent)",
        "runs (signals/s): bare " + ", ".join(f"{r['rate']:,.0f}" for r in m["bare"])
        + "; flotta " + ", ".join(f"{r['rate']:,.0f}" for r in m["flotta"]),
        flotta_note,
        bare_note,
        f"metered (usage ledger, streaming) {m['metered']:,} signals; stored (record log) "
        f"{m['stored']:,}; sent {sent:,}" + (" — equal" if metered_equal else " — NOT EQUAL"),
        "flotta runs: records sent "
        + ", ".join(f"{r['records']:,}" for r in m["flotta"]) + "; resent "
        + ", ".join(str(r["resent"]) for r in m["flotta"]) + "; left unacked "
        + ", ".join(str(r["unacked"]) for r in m["flotta"])
        + f"; consumer reconnects {m['consumer'].get('reconnects', 0)}, duplicates "
        f"{m['consumer'].get('duplicates', 0)}",
        "CPU, share of one core (medians): during the flotta runs server "
        f"{cpu.get('server', 0):.0%}, consumer {cpu.get('consumer', 0):.0%}; during the bare "
        f"runs the bare loop {cpu.get('bare loop', 0):.0%}; while the clients send: to flotta, "
        f"server {sending_share(m['flotta'], 'server_sending_cpu_s'):.0%} and clients "
        f"{sending_share(m['flotta']):.0%}; to bare, bare loop "
        f"{sending_share(m['bare'], 'server_sending_cpu_s'):.0%} and clients "
        f"{sending_share(m['bare']):.0%}",
    ]  # fmt: skip
    if m["consumer"].get("closed"):
        notes.append("stream closed by the server: " + " | ".join(m["consumer"]["closed"]))
    if m["problems"]:
        notes.append("server log: " + " | ".join(m["problems"][-4:]))
    honest = flotta_equal and bare_equal and metered_equal
    ok = flotta >= TARGET_SIGNALS_S and ratio is not None and ratio >= TARGET_RATIO and honest
    return [
        h.Row(
            target_id="P1",
            what=f"telemetry ingested, metered, delivered ({args.cars} cars x {args.signals} sig)",
            figure=f"{flotta:,.0f} signals/s",
            baseline=f"{bare:,.0f} signals/s bare WS",
            ratio=ratio,
            ratio_note="of bare",
            target=f"≥ {TARGET_SIGNALS_S:,} signals/s; ≥ {TARGET_RATIO:.0%} of bare",
            verdict=h.verdict(ok),
            notes=notes,
        )
    ]


def run(
    quick: bool = False,
    cars: int = 50,
    signals: int = 20,
    duration_s: float | None = None,
    repeats: int | None = None,
    window: int = 64,
) -> list[h.Row]:
    args = argparse.Namespace(
        cars=cars, signals=signals, window=window,
        duration=duration_s or (3.0 if quick else 6.0), repeats=repeats or (1 if quick else 2),
    )  # fmt: skip
    h.log(
        f"P1: {args.cars} cars x {args.signals} signals, {args.repeats} x {args.duration:g} s "
        "against a bare loop and `flotta serve`"
    )
    return rows(args, measure(args))


# ---------------------------------------------------------------- command line


def role_args(role: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"telemetry.py {role}")
    if role == "clients":
        parser.add_argument("--target", choices=("flotta", "bare"), required=True)
        parser.add_argument("--url", required=True)
        parser.add_argument("--cars-file", required=True)
        parser.add_argument("--cars", type=int, required=True)
        parser.add_argument("--signals", type=int, required=True)
        parser.add_argument("--duration", type=float, required=True)
        parser.add_argument("--window", type=int, required=True)
        parser.add_argument("--first-seq", type=int, default=0)
        parser.add_argument("--server-pid", type=int, default=0, help="CPU measured while sending")
    elif role == "consumer":
        parser.add_argument("--base-url", required=True)
        parser.add_argument("--status-file", required=True)
    else:
        parser.add_argument("--port", type=int, required=True)
    return parser.parse_args(argv)


def run_role(role: str, argv: list[str]) -> None:
    args = role_args(role, argv)
    for value in (getattr(args, "url", ""), getattr(args, "base_url", "")):
        if value and not value.split("//", 1)[-1].startswith((h.HOST, "localhost")):
            raise SystemExit("loopback only")
    if role == "bare-server":
        run_bare_server(args.port)
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        if role == "clients":
            asyncio.run(run_clients(args))
        else:
            args.token = os.environ["FLOTTA_BENCH_TOKEN"]
            asyncio.run(Consumer(args).run())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("clients", "consumer", "bare-server"):
        run_role(sys.argv[1], sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 x 3 s instead of 2 x 6 s")
    parser.add_argument("--cars", type=int, default=50, help="device clients (vehicles)")
    parser.add_argument("--signals", type=int, default=20, help=f"per record, ≤ {len(FIELDS)}")
    parser.add_argument("--duration", type=float, default=None, help="seconds of sending per run")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--window", type=int, default=64, help="unacked records per car")
    args = parser.parse_args()
    print(h.env_summary())
    result = run(args.quick, args.cars, args.signals, args.duration, args.repeats, args.window)
    h.print_rows(result, "P1 telemetry")


if __name__ == "__main__":
    main()
