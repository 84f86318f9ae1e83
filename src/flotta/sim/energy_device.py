"""A simulated energy site as a real gateway client: it meters, reports and obeys its owner."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
import websockets
from websockets.asyncio.client import ClientConnection

from flotta.clock import Clock
from flotta.gateway import protocol
from flotta.gateway.protocol import Frame, FrameType
from flotta.sim.energy_meter import (
    INTERVAL_S,
    BackupEvent,
    IntervalTotals,
    Meter,
    event_json,
    interval_json,
    interval_start,
    offer_at,
)
from flotta.sim.energy_settings import apply_settings, settings_json
from flotta.sim.energy_site import Flows, SiteSettings, SiteSpec, SiteState, step
from flotta.sim.energy_sun import zone
from flotta.sim.energy_wall import WallConnector
from flotta.sim.reconnect import stay_linked

log = structlog.get_logger(__name__)


@dataclass
class SimSite:
    """One home: its physics, its meter, its wall connector and its link to the gateway."""

    site_id: int
    credential: str
    spec: SiteSpec
    clock: Clock
    url: str
    config: dict[str, Any] = field(default_factory=dict)  # HELLO's static description
    settings: SiteSettings = field(default_factory=SiteSettings)
    state: SiteState = field(default_factory=SiteState)
    wall: WallConnector | None = None
    tick_s: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    storm_forecast: bool = False
    flows: Flows = field(default_factory=Flows)
    meter: Meter = field(default_factory=Meter)
    last: datetime | None = None
    outage_start: datetime | None = None
    unsent: list[IntervalTotals] = field(default_factory=list)
    unsent_events: list[BackupEvent] = field(default_factory=list)
    _ws: ClientConnection | None = None

    # --- physics --------------------------------------------------------------------------

    def advance(self, now: datetime) -> None:
        """Run the physics up to `now`, cutting steps at interval edges so totals are exact."""
        if self.last is None:
            self.last = now
            return
        while self.last < now:
            edge = interval_start(self.last) + timedelta(seconds=INTERVAL_S)
            until = min(now, edge)
            dt = (until - self.last).total_seconds()
            self.state.storm_active = self.storm_forecast and self.settings.storm_mode_enabled
            middle = self.last + (until - self.last) / 2
            wall_w = self.wall.power_w() if self.wall is not None else 0.0
            offer = offer_at(self.spec, self.settings, middle, wall_w)
            self.flows = step(self.spec, self.settings, self.state, offer, dt)
            self.unsent += self.meter.add(until, self.flows, dt)
            self.last = until

    def grid_outage(self) -> None:
        """The utility fails: the site islands and the battery carries the home."""
        self.advance(self.clock.now())
        if self.state.grid_up:
            self.state.grid_up = False
            self.outage_start = self.clock.now()

    def forecast_storm(self, coming: bool) -> None:
        """A storm is (or is no longer) forecast; with Storm Watch on, the battery fills up."""
        self.advance(self.clock.now())
        self.storm_forecast = coming

    def restore_grid(self) -> None:
        """The utility is back: the outage becomes a backup event in the site's history."""
        self.advance(self.clock.now())
        if not self.state.grid_up and self.outage_start is not None:
            duration = int((self.clock.now() - self.outage_start).total_seconds())
            self.unsent_events.append(BackupEvent(self.outage_start, duration))
        self.state.grid_up = True
        self.outage_start = None

    # --- what the site reports ------------------------------------------------------------

    def live_status(self) -> dict[str, Any]:
        """Tesla's `live_status` body for this instant."""
        f, spec, state = self.flows, self.spec, self.state
        pct = state.energy_wh / spec.battery_wh * 100.0 if spec.has_battery else 0.0
        now = self.clock.now().astimezone(zone(spec.time_zone)).replace(microsecond=0)
        live: dict[str, Any] = {
            "solar_power": round(f.solar, 1),
            "energy_left": round(state.energy_wh, 1),
            "total_pack_energy": round(spec.battery_wh),
            "percentage_charged": round(pct, 3),
            "backup_capable": spec.has_battery,
            "battery_power": round(f.battery_discharge - f.battery_charge, 1),
            "load_power": round(f.load, 1),
            "grid_status": "Active" if state.grid_up else "Inactive",
            "grid_services_active": False,
            "grid_power": round(f.grid_import - f.grid_export, 1),
            "grid_services_power": 0,
            "generator_power": 0,
            "island_status": "on_grid" if state.grid_up else "off_grid",
            "storm_mode_active": state.storm_active,
            "timestamp": now.isoformat(),
            "wall_connectors": [self.wall.live(f.wall_connector)] if self.wall else [],
        }
        return live

    def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one gateway request."""
        op = body.get("op")
        self.advance(self.clock.now())
        if op == "live_status":
            return {"live_status": self.live_status()}
        if op == "site_info":
            return {"settings": settings_json(self.settings)}
        if op == "configure":
            patch = body.get("settings", {})
            if not isinstance(patch, dict):
                return {"error": "invalid_request", "description": "settings must be an object"}
            try:
                apply_settings(self.settings, patch)
            except ValueError as exc:
                return {"error": "invalid_field", "description": str(exc)}
            return {"settings": settings_json(self.settings)}
        return {"error": "invalid_command", "description": f"unknown op {op!r}"}

    # --- the link ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until cancelled, reconnecting with capped exponential back-off."""
        await stay_linked(
            self._session, self._dropped, rng=self.rng, max_delay_s=30.0, site=self.site_id
        )

    def _dropped(self) -> None:
        self.connected.clear()
        self._ws = None

    async def _session(self) -> None:
        headers = {"Authorization": f"Bearer {self.credential}"}
        async with websockets.connect(self.url, additional_headers=headers, compression=None) as ws:
            self._ws = ws
            hello = {"firmware": "25.10.1", "power": "online", "config": self.config}
            await ws.send(protocol.encode_json(FrameType.HELLO, hello))
            self.advance(self.clock.now())
            await self._report()
            self.connected.set()
            ticker = asyncio.create_task(self._tick_loop(), name=f"site-{self.site_id}")
            try:
                async for data in ws:
                    if isinstance(data, bytes):
                        await self._on_frame(protocol.decode(data, 1_000_000))
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            await self.tick()

    async def tick(self) -> None:
        self.advance(self.clock.now())
        await self._report()

    async def _report(self) -> None:
        """Push state, then any finished intervals and backup events for storage."""
        if self._ws is None:
            return
        state = {"live_status": self.live_status(), "settings": settings_json(self.settings)}
        await self._ws.send(protocol.encode_json(FrameType.STATE, state))
        if self.unsent or self.unsent_events:
            body = {
                "intervals": [interval_json(i) for i in self.unsent],
                "backup_events": [event_json(e) for e in self.unsent_events],
            }
            await self._ws.send(protocol.encode_json(FrameType.TELEMETRY, body))
            self.unsent, self.unsent_events = [], []

    async def _on_frame(self, frame: Frame) -> None:
        if frame.type == FrameType.COMMAND:
            try:
                body = protocol.decode_json(frame)
            except protocol.FrameError as exc:
                reply: dict[str, Any] = {"error": "bad_frame", "description": str(exc)}
            else:
                reply = self.handle(body)
            await self._report()  # state first, so the next read already shows the change
            if self._ws is not None:
                await self._ws.send(
                    protocol.encode_json(FrameType.REPLY, reply, frame.correlation_id)
                )
        elif frame.type == FrameType.ERROR:
            log.warning("gateway reported an error", site=self.site_id, body=frame.body[:200])
