"""Refresh-token rotation rules (reference §2.4) over random sequences of refreshes and waits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.accounts.models import User
from flotta.clock import ManualClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.models import metadata
from flotta.oauth.models import OAuthClient, RefreshFamily
from flotta.oauth.repository import OAuthRepository
from flotta.oauth.service import Lifetimes, OAuthService, Refusal, hmac_hash

SECRET = "property-test-secret-key"
GRACE_S = 86_400
LIFETIMES = Lifetimes(refresh_s=90 * GRACE_S, grace_s=GRACE_S)

# ("present", i): present the i-th token issued so far (modulo); ("wait", s): time passes.
operations = st.lists(
    st.one_of(
        st.tuples(st.just("present"), st.integers(0, 20)),
        st.tuples(st.just("latest"), st.just(0)),
        st.tuples(st.just("wait"), st.sampled_from([1, 3600, 23 * 3600, 25 * 3600, 91 * GRACE_S])),
    ),
    min_size=1,
    max_size=25,
)


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    clock: ManualClock
    client: OAuthClient
    family_id: int
    issued: list[str] = field(default_factory=list)

    def service(self, session: AsyncSession) -> OAuthService:
        return OAuthService(
            session, secret_key=SECRET, clock=self.clock, region="na", lifetimes=LIFETIMES
        )


async def make_world() -> tuple[World, object]:
    engine = make_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = make_sessionmaker(engine)
    clock = ManualClock()
    async with sessions() as session, session.begin():
        user = User(email="p@flotta.test", created_at=clock.now())
        session.add(user)
        await session.flush()
        service = OAuthService(
            session, secret_key=SECRET, clock=clock, region="na", lifetimes=LIFETIMES
        )
        client, _ = await service.register_client(
            name="app", owner_id=user.id, confidential=False, scopes=["openid"]
        )
        first = await service.issue(client, user.id, ["openid", "offline_access"])
        family = await OAuthRepository(session).token_by_hash(hmac_hash(SECRET, first))
        assert family is not None
        world = World(sessions, clock, client, family.family_id, [first])
    return world, engine


async def snapshot(world: World, token: str) -> dict[str, object]:
    """What the rules depend on, read before an operation."""
    async with world.sessions() as session:
        repo = OAuthRepository(session)
        row = await repo.token_by_hash(hmac_hash(SECRET, token))
        family = await session.get(RefreshFamily, world.family_id)
        assert row is not None and family is not None
        now = world.clock.now()
        return {
            "revoked": family.revoked_at is not None,
            "expired": row.expires_at <= now,
            "live": row.used_at is None and row.superseded_at is None,
            "stale": row.used_at is not None and now - row.used_at > timedelta(seconds=GRACE_S),
            "superseded": row.superseded_at is not None,
        }


async def present(world: World, token: str) -> bool:
    """One refresh in its own committed transaction, as the endpoint does; True if it rotated."""
    async with world.sessions() as session, session.begin():
        outcome = await world.service(session).refresh(world.client, token, None)
    if isinstance(outcome, Refusal):
        assert outcome.error.key == "login_required"
        return False
    world.issued.append(outcome.refresh_token)
    return True


async def check_invariants(world: World) -> None:
    async with world.sessions() as session:
        tokens = await OAuthRepository(session).tokens_of(world.family_id)
        family = await session.get(RefreshFamily, world.family_id)
    assert family is not None
    live = [t for t in tokens if t.used_at is None and t.superseded_at is None]
    assert len(live) <= 1, "at most one live token per family"


async def run(ops: list[tuple[str, int]]) -> None:
    world, engine = await make_world()
    try:
        for kind, arg in ops:
            if kind == "wait":
                world.clock.advance(arg)
                continue
            token = world.issued[-1] if kind == "latest" else world.issued[arg % len(world.issued)]
            before = await snapshot(world, token)
            rotated = await present(world, token)
            after = await snapshot(world, token)
            if before["revoked"] or before["expired"]:
                assert not rotated, "revoked or expired tokens never yield tokens"
            if before["live"] and not before["revoked"] and not before["expired"]:
                assert rotated, "an unused, unexpired token of a live family always rotates"
            if (before["stale"] or before["superseded"]) and not before["expired"]:
                assert not rotated and after["revoked"], "reuse outside grace revokes the family"
            await check_invariants(world)
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_rotation_rules_hold_for_any_sequence(ops: list[tuple[str, int]]) -> None:
    asyncio.run(run(ops))
