"""Everything a running Flotta needs, built once in the app's lifespan: no module-level state."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flotta.adapters import open_bus, open_kv
from flotta.auth.tokens import TokenService, load_or_create_key
from flotta.billing.meter import Meter
from flotta.clock import Clock, SystemClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.migrate import upgrade_to_head
from flotta.devices.directory import Directory
from flotta.energy.gateway import EnergyHub
from flotta.gateway.hub import Hub
from flotta.gateway.presence import PresenceRecorder
from flotta.mail.dispatcher import MailDispatcher
from flotta.outbound import Outbound
from flotta.ports.bus import Bus
from flotta.ports.kv import KV
from flotta.ratelimit.limiter import RateLimiter
from flotta.settings import Settings
from flotta.telemetry.dispatch import TelemetryStreams
from flotta.telemetry.sync import TelemetrySync
from flotta.telemetry.vehicle_ca import VehicleCA
from flotta.vehicles.answer_cache import AnswerCache


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    directory: Directory
    tokens: TokenService
    presence: PresenceRecorder
    bus: Bus
    kv: KV
    hub: Hub
    energy: EnergyHub
    mail: MailDispatcher
    answers: AnswerCache = field(default_factory=AnswerCache)
    # None when FLOTTA_RATELIMIT__ENABLED=false.
    limiter: RateLimiter | None = None
    # None when FLOTTA_BILLING__METERING=false.
    meter: Meter | None = None
    # Streaming configs to cars (issue 5); None only for a Runtime built by hand.
    telemetry: TelemetrySync | None = None
    # Streamed records: ingest, record log, sinks and Fleet API streams (issue 5).
    streams: TelemetryStreams | None = None
    # Where developers' hosts may resolve to (a Runtime built by hand: public addresses only).
    outbound: Outbound = field(default_factory=Outbound)

    @classmethod
    async def start(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        """Open the database (migrating it to head), bus and kv; start background tasks."""
        clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        tokens = build_token_service(settings, clock)
        engine = make_engine(settings.database_url, echo=settings.db.echo)
        bus: Bus | None = None
        try:
            await upgrade_to_head(engine)
            bus = await open_bus(settings.bus.url, settings.namespace)
            kv = await open_kv(settings.kv.url, clock, settings.namespace)
        except BaseException:
            # Half-started: close what opened, so a failed start leaks no connections.
            if bus is not None:
                await bus.close()
            await engine.dispose()
            raise
        sessions = make_sessionmaker(engine)
        presence = PresenceRecorder(sessions)
        presence.start()
        hub = Hub(settings.gateway, clock, presence, bus=bus, kv=kv)
        hub.start()
        energy = EnergyHub(
            clock,
            sessions,
            max_frame_bytes=settings.gateway.max_frame_bytes,
            timeout_s=settings.gateway.command_timeout_s,
            bus=bus,
            kv=kv,
            presence_ttl_s=settings.gateway.presence_ttl_s,
        )
        energy.start()
        mail = MailDispatcher(sessions, settings.mail, clock)
        mail.start()
        limiter = None
        if settings.ratelimit.enabled:
            limiter = await RateLimiter.open(
                settings.ratelimit, settings.kv.url, settings.namespace
            )
        directory = Directory(sessions, clock)
        outbound = Outbound.from_settings(settings)
        started = await start_streaming(settings, sessions, directory, hub, bus, kv, outbound)
        meter, telemetry, streams = started
        return cls(
            settings=settings,
            clock=clock,
            engine=engine,
            sessions=sessions,
            directory=directory,
            tokens=tokens,
            presence=presence,
            bus=bus,
            kv=kv,
            hub=hub,
            energy=energy,
            mail=mail,
            limiter=limiter,
            meter=meter,
            telemetry=telemetry,
            streams=streams,
            outbound=outbound,
        )

    async def end_streams(self, within_s: float) -> None:
        """Tell the clients of live telemetry streams that the server stops, and end the
        streams (waiting up to `within_s`): the server waits for open responses before it
        stops, and a stream would otherwise never end."""
        if self.streams is not None:
            await self.streams.dispatcher.end_streams(within_s)

    async def stop(self) -> None:
        """Withdraw this process's vehicles and sites from the cluster, then close everything."""
        if self.streams is not None:
            await self.streams.stop()  # before the meter: ingest meters what it commits
        if self.meter is not None:
            await self.meter.stop()  # commits what is queued: a clean stop loses no usage
        if self.telemetry is not None:
            await self.telemetry.stop()
        await self.mail.stop()
        if self.limiter is not None:
            await self.limiter.close()
        await self.hub.stop()
        await self.energy.stop()
        await self.bus.close()
        await self.kv.close()
        await self.presence.stop()
        await self.engine.dispose()


async def start_streaming(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    directory: Directory,
    hub: Hub,
    bus: Bus,
    kv: KV,
    outbound: Outbound,
) -> tuple[Meter | None, TelemetrySync, TelemetryStreams]:
    """Metering (billing) and streaming telemetry: configs synced to cars, and ingest."""
    clock = hub.clock
    meter = None
    if settings.billing.metering:
        meter = Meter(settings, sessions, clock)
        await meter.start()  # replays usage a crashed process journaled but never committed
    telemetry = TelemetrySync(sessions, hub, bus, kv, clock)
    await telemetry.start()
    vehicle_ca = VehicleCA.load_or_create(settings.data_dir / "keys" / "vehicle-ca.pem")
    streams = TelemetryStreams(
        sessions,
        directory,
        hub,
        clock,
        meter=meter,
        bus=bus,
        vehicle_ca=vehicle_ca,
        outbound=outbound,
    )
    await streams.start()
    telemetry.removal_listeners.append(streams.entitlements.forget)
    return meter, telemetry, streams


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
