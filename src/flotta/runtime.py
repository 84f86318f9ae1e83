"""Everything a running Flotta needs, built once in the app's lifespan: no module-level state."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flotta.auth.tokens import TokenService, load_or_create_key
from flotta.clock import Clock, SystemClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.migrate import upgrade_to_head
from flotta.devices.directory import Directory
from flotta.gateway.hub import Hub
from flotta.gateway.presence import PresenceRecorder
from flotta.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    directory: Directory
    tokens: TokenService
    presence: PresenceRecorder
    hub: Hub

    @classmethod
    async def start(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        """Open the database (migrating it to head), load keys and start background writers."""
        clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url, echo=settings.db.echo)
        await upgrade_to_head(engine)
        sessions = make_sessionmaker(engine)
        tokens = build_token_service(settings, clock)
        presence = PresenceRecorder(sessions)
        presence.start()
        return cls(
            settings=settings,
            clock=clock,
            engine=engine,
            sessions=sessions,
            directory=Directory(sessions, clock),
            tokens=tokens,
            presence=presence,
            hub=Hub(settings.gateway, clock, presence),
        )

    async def stop(self) -> None:
        await self.presence.stop()
        await self.engine.dispose()


def build_token_service(settings: Settings, clock: Clock) -> TokenService:
    key = load_or_create_key(settings.data_dir / "keys" / "token-signing.pem")
    return TokenService(
        key,
        issuer=settings.auth.issuer,
        audience=settings.public_base_url,
        region=settings.auth.region,
        ttl_s=settings.auth.access_token_ttl_s,
        clock=clock,
    )
