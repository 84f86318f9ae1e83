"""The energy-site gateway on its own: HELLO, state, requests, stored history, bad frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.accounts.models import User
from flotta.clock import ManualClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.migrate import upgrade_to_head
from flotta.energy.gateway import EnergyHub, SiteUnavailable
from flotta.energy.repository import EnergyHistoryRepository
from flotta.energy.service import provision_site
from flotta.gateway import protocol
from flotta.gateway.link_io import LinkClosed
from flotta.gateway.protocol import FrameType
from tests.energy.support import Link

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade_to_head(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def a_site(db: async_sessionmaker[AsyncSession]) -> int:
    clock = ManualClock(T0)
    async with db() as session, session.begin():
        user = User(email="o@flotta.test", full_name="O", created_at=T0)
        session.add(user)
        await session.flush()
        made = await provision_site(
            session,
            owner=user,
            site_name="Test",
            time_zone_name="Europe/Rome",
            spec={"solar_kwp": 5},
            secret_key="k",
            clock=clock,
            installed_at=T0,
        )
        return made.site.id


def interval(minutes: int, solar: int) -> dict[str, Any]:
    start = T0 + timedelta(minutes=minutes)
    return {"start": start.isoformat(), "seconds": 300, "wh": {"solar_to_home": solar}}


async def test_a_session_stores_history_once_and_answers_requests(
    db: async_sessionmaker[AsyncSession],
) -> None:
    site = await a_site(db)
    hub = EnergyHub(ManualClock(T0), db, max_frame_bytes=1_000_000, timeout_s=0.5)
    link = Link()
    serving = asyncio.create_task(hub.serve(site, link.receive, link.send, link.close))
    link.push(FrameType.HELLO, {"config": {"site_name": "Test"}})
    await link.next_sent(FrameType.WELCOME)
    link.push(FrameType.STATE, {"live_status": {"solar_power": 1200.0}, "settings": {}})
    telemetry = {"intervals": [interval(0, 100), interval(5, 120)], "backup_events": []}
    link.push(FrameType.TELEMETRY, telemetry)
    link.push(FrameType.TELEMETRY, {"intervals": [interval(5, 999)]})  # a resend is ignored

    ask = asyncio.create_task(hub.request(site, {"op": "live_status"}))
    command = await link.next_sent(FrameType.COMMAND)
    assert protocol.decode_json(command) == {"op": "live_status"}
    link.push(FrameType.REPLY, {"live_status": {"solar_power": 1300.0}}, command.correlation_id)
    assert (await ask)["live_status"]["solar_power"] == 1300.0
    assert hub.mirror(site)["live_status"]["solar_power"] == 1200.0

    with pytest.raises(SiteUnavailable):
        await hub.request(site, {"op": "site_info"})  # nobody answers within 0.5 s

    link.inbox.put_nowait(None)
    await asyncio.wait_for(serving, 5)
    assert not hub.connected(site)
    with pytest.raises(SiteUnavailable):
        await hub.request(site, {"op": "live_status"})
    async with db() as session:
        stored = await EnergyHistoryRepository(session).intervals(site, T0, T0 + timedelta(hours=1))
    assert [wh["solar_to_home"] for _, wh in stored] == [100, 120]


async def test_bad_frames_are_answered_with_errors(db: async_sessionmaker[AsyncSession]) -> None:
    site = await a_site(db)
    hub = EnergyHub(ManualClock(T0), db, max_frame_bytes=1_000_000, timeout_s=0.5)
    link = Link()
    link.push(FrameType.STATE, {})
    await asyncio.wait_for(hub.serve(site, link.receive, link.send, link.close), 5)
    assert link.closed is not None and link.closed[0] == 1008  # HELLO must come first

    link = Link()
    serving = asyncio.create_task(hub.serve(site, link.receive, link.send, link.close))
    link.push(FrameType.HELLO, {})
    await link.next_sent(FrameType.WELCOME)
    link.push(FrameType.TELEMETRY, {"intervals": [{"start": "noon", "wh": {}}]})
    error = protocol.decode_json(await link.next_sent(FrameType.ERROR))
    assert error["error"] == "bad_frame" and "ISO-8601" in error["description"]
    link.push(FrameType.TELEMETRY, {"intervals": {"not": "a list"}})
    error = protocol.decode_json(await link.next_sent(FrameType.ERROR))
    assert "must be lists" in error["description"]
    link.push(FrameType.WAKE, {})
    error = protocol.decode_json(await link.next_sent(FrameType.ERROR))
    assert "may not send WAKE" in error["description"]
    link.inbox.put_nowait(None)
    await asyncio.wait_for(serving, 5)


@pytest.mark.parametrize("sends", [0, 1], ids=["at WELCOME", "at an ERROR"])
async def test_a_site_link_closed_under_a_send_ends_quietly(
    db: async_sessionmaker[AsyncSession], sends: int
) -> None:
    site = await a_site(db)
    hub = EnergyHub(ManualClock(T0), db, max_frame_bytes=1_000_000, timeout_s=0.5)
    link = Link()
    sent = link.send

    async def send(data: bytes) -> None:  # the peer is gone after `sends` frames
        if len(link.sent) >= sends:
            raise LinkClosed("the peer is gone")
        await sent(data)

    link.push(FrameType.HELLO, {})
    link.inbox.put_nowait("a text frame, answered with an ERROR")
    await asyncio.wait_for(hub.serve(site, link.receive, send, link.close), 5)
    assert not hub.connected(site)
