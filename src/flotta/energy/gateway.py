"""The energy-site side of the device gateway: live site links, requests and metered history.

A site linked to another process is reached through `energy/routing.py`, as vehicles are.
Sites speak the device protocol's framing (docs/device-protocol.md, "Energy sites") with JSON
bodies: an energy gateway has no Tesla protobuf of its own in `tesla-protocol`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.adapters.bus_memory import MemoryBus
from flotta.adapters.kv_memory import MemoryKV
from flotta.clock import Clock
from flotta.energy.repository import EnergyHistoryRepository
from flotta.energy.routing import SiteRouter
from flotta.errors import FlottaError, SiteUnavailable
from flotta.gateway import protocol
from flotta.gateway.cluster import RPC_MARGIN_S, epoch_ms
from flotta.gateway.link_io import LinkClosed
from flotta.gateway.protocol import MAX_CORRELATION_ID, Frame, FrameError, FrameType
from flotta.ports.bus import Bus
from flotta.ports.kv import KV
from flotta.settings import GatewaySettings
from flotta.sim.energy_meter import BackupEvent, IntervalTotals
from flotta.sim.energy_site import FLOW_NAMES

log = structlog.get_logger(__name__)

Receive = Callable[[], Awaitable[bytes | str | None]]
Sender = Callable[[bytes], Awaitable[None]]
Closer = Callable[[int, str], Awaitable[None]]

HELLO_TIMEOUT_S = 10.0
MAX_INTERVALS_PER_FRAME = 10_000


class SiteSession:
    """One connected site: its HELLO config, latest pushed state and in-flight requests."""

    def __init__(
        self, site_id: int, send: Sender, close_link: Closer, connected_at: datetime
    ) -> None:
        self.site_id = site_id
        self.connected_at = connected_at
        self._send = send
        self.close_link = close_link
        self.config: dict[str, Any] = {}
        self.mirror: dict[str, Any] = {}
        self.closed = False
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0

    async def request(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send a COMMAND and wait for the REPLY with the same correlation id."""
        if self.closed:
            raise SiteUnavailable()
        self._next_id = self._next_id % MAX_CORRELATION_ID + 1
        correlation_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            await self._send(protocol.encode_json(FrameType.COMMAND, body, correlation_id))
            return await asyncio.wait_for(future, timeout_s)
        except LinkClosed:
            raise SiteUnavailable("the energy site disconnected") from None
        except TimeoutError:
            raise SiteUnavailable(f"energy site did not answer within {timeout_s:g} s") from None
        finally:
            self._pending.pop(correlation_id, None)

    def resolve(self, frame: Frame) -> None:
        future = self._pending.get(frame.correlation_id)
        if future is not None and not future.done():
            future.set_result(protocol.decode_json(frame))

    def close(self) -> None:
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SiteUnavailable("the energy site disconnected"))
        self._pending.clear()


class EnergyHub:
    """Live energy-site links of this process, by `energy_site_id`; others' through a router.

    A site whose link is here is served from memory; any other goes through kv (presence)
    and the bus (RPC to the owning process), exactly as vehicles do.
    """

    def __init__(
        self,
        clock: Clock,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_frame_bytes: int,
        timeout_s: float,
        bus: Bus | None = None,
        kv: KV | None = None,
        presence_ttl_s: float | None = None,
    ) -> None:
        self.clock = clock
        self.db = sessions
        self.max_frame_bytes = max_frame_bytes
        self.timeout_s = timeout_s
        self.sessions: dict[int, SiteSession] = {}
        ttl_s = presence_ttl_s or GatewaySettings().presence_ttl_s
        self.router = SiteRouter(bus or MemoryBus(), kv or MemoryKV(clock), self, ttl_s, clock)

    def start(self) -> None:
        self.router.start()

    async def stop(self) -> None:
        """Withdraw this process's sites from the cluster."""
        await self.router.stop()

    def connected(self, site_id: int) -> bool:
        return site_id in self.sessions

    def mirror(self, site_id: int) -> dict[str, Any]:
        """The last state a site linked here pushed ({} when it is not linked here)."""
        session = self.sessions.get(site_id)
        return session.mirror if session is not None else {}

    async def report(self, site_id: int) -> dict[str, Any]:
        """The last state the site pushed, wherever it is linked; {} when it is unreachable."""
        if site_id in self.sessions:
            return self.mirror(site_id)
        try:
            return await self.router.report(site_id)
        except FlottaError:
            return {}  # a products listing shows the site without live values, not an error

    async def request(self, site_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Ask the site (`op`: live_status, site_info or configure); 408 when it cannot answer."""
        if site_id in self.sessions:
            return await self.local_request(site_id, body)
        return await self.router.request(site_id, body, self.timeout_s + RPC_MARGIN_S)

    async def local_request(self, site_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Ask a site linked to this process; its own error becomes a FlottaError."""
        session = self.sessions.get(site_id)
        if session is None:
            raise SiteUnavailable()
        reply = await session.request(body, self.timeout_s)
        if reply.get("error"):
            raise FlottaError(str(reply.get("description", "")), key=str(reply["error"]))
        return reply

    async def ask(self, site_id: int, op: str, member: str, **extra: Any) -> dict[str, Any]:
        """Request `op` and return the reply's `member` object; a malformed reply is a 408."""
        answer = (await self.request(site_id, {"op": op, **extra})).get(member)
        if not isinstance(answer, dict):
            raise SiteUnavailable(f"the energy site answered {op} without {member}")
        return answer

    def state_of(self, key: str) -> str:
        """The cluster's view of a site linked here: online, else offline."""
        return "online" if int(key) in self.sessions else "offline"

    async def hand_over(self, key: str, newer_link_ms: int) -> None:
        """Another process accepted a newer link for the site: drop ours, as a local one would."""
        session = self.sessions.get(int(key))
        if session is None or epoch_ms(session.connected_at) > newer_link_ms:
            return
        session.close()
        with contextlib.suppress(Exception):
            await session.close_link(4409, "replaced by a newer connection")

    async def serve(self, site_id: int, receive: Receive, send: Sender, close: Closer) -> None:
        """Run one site link from its HELLO to its end, which a peer gone mid-send is too; a
        newer link replaces an older one."""
        with contextlib.suppress(LinkClosed, SiteUnavailable):
            await self._serve(site_id, receive, send, close)

    async def _serve(self, site_id: int, receive: Receive, send: Sender, close: Closer) -> None:
        session = SiteSession(site_id, send, close, self.clock.now())
        try:
            session.config = await self._hello(receive)
        except (TimeoutError, FrameError) as exc:
            await send(protocol.error_frame("hello_required", str(exc) or "no HELLO in time"))
            await close(1008, "expected a HELLO frame")
            return
        previous = self.sessions.get(site_id)
        if previous is not None:
            previous.close()
            with contextlib.suppress(Exception):
                await previous.close_link(4409, "replaced by a newer connection")
        self.sessions[site_id] = session
        try:
            # Announced before WELCOME, so once the site sees it every process can reach it.
            await self.router.claim(str(site_id), session.connected_at)
            welcome = {
                "server_time": self.clock.now().isoformat(),
                "command_timeout_s": self.timeout_s,
            }
            await send(protocol.encode_json(FrameType.WELCOME, welcome))
            await self._receive_loop(session, receive)
        finally:
            session.close()
            if self.sessions.get(site_id) is session:
                del self.sessions[site_id]
                await self.router.release(str(site_id))

    async def _hello(self, receive: Receive) -> dict[str, Any]:
        data = await asyncio.wait_for(receive(), HELLO_TIMEOUT_S)
        if not isinstance(data, bytes):
            raise FrameError("the first frame must be a binary HELLO")
        frame = protocol.decode(data, self.max_frame_bytes)
        if frame.type != FrameType.HELLO:
            raise FrameError(f"the first frame must be HELLO, not {frame.type.name}")
        config = protocol.decode_json(frame).get("config", {})
        if not isinstance(config, dict):
            raise FrameError("HELLO config must be a JSON object")
        return config

    async def _receive_loop(self, session: SiteSession, receive: Receive) -> None:
        while True:
            data = await receive()
            if data is None:
                return
            if isinstance(data, str):
                await session._send(protocol.error_frame("binary_only", "frames must be binary"))
                continue
            try:
                await self._dispatch(session, protocol.decode(data, self.max_frame_bytes))
            except FrameError as exc:
                await session._send(protocol.error_frame("bad_frame", str(exc)))

    async def _dispatch(self, session: SiteSession, frame: Frame) -> None:
        if frame.type == FrameType.STATE:
            session.mirror = protocol.decode_json(frame)
        elif frame.type == FrameType.REPLY:
            session.resolve(frame)
        elif frame.type == FrameType.TELEMETRY:
            await self._store(session.site_id, protocol.decode_json(frame))
        elif frame.type == FrameType.ERROR:
            log.warning(
                "energy site reported an error", site=session.site_id, body=frame.body[:200]
            )
        else:
            raise FrameError(f"an energy site may not send {frame.type.name} frames")

    async def _store(self, site_id: int, body: dict[str, Any]) -> None:
        raw_intervals, raw_events = body.get("intervals", []), body.get("backup_events", [])
        if not isinstance(raw_intervals, list) or not isinstance(raw_events, list):
            raise FrameError("TELEMETRY intervals and backup_events must be lists")
        if len(raw_intervals) > MAX_INTERVALS_PER_FRAME:
            raise FrameError(f"at most {MAX_INTERVALS_PER_FRAME} intervals per frame")
        intervals = [_interval(i) for i in raw_intervals]
        events = [_event(e) for e in raw_events]
        async with self.db() as db, db.begin():
            repo = EnergyHistoryRepository(db)
            await repo.add_intervals(site_id, intervals)
            for event in events:
                await repo.add_backup_event(site_id, event)


def _when(raw: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        raise FrameError(f"{raw!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        raise FrameError("timestamps must carry an offset")
    return parsed


def _interval(raw: Any) -> IntervalTotals:
    if not isinstance(raw, dict):
        raise FrameError("each interval must be a JSON object")
    wh, seconds = raw.get("wh", {}), raw.get("seconds", 300)
    if not isinstance(wh, dict) or not isinstance(seconds, int):
        raise FrameError("an interval needs an integer seconds and a wh object")
    values = {name: wh.get(name, 0) for name in FLOW_NAMES}
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
        raise FrameError("interval energies must be integers (Wh)")
    return IntervalTotals(_when(raw.get("start")), seconds, values)


def _event(raw: Any) -> BackupEvent:
    if not isinstance(raw, dict) or not isinstance(raw.get("duration_s"), int):
        raise FrameError("each backup event needs start and an integer duration_s")
    return BackupEvent(_when(raw.get("start")), raw["duration_s"])
