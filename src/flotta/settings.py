"""Configuration: pydantic-settings with the FLOTTA_ prefix and nested groups (FLOTTA_DB__URL)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

import limits
from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_SECRET = "flotta-demo-secret-change-me"


class DatabaseSettings(BaseModel):
    """Where records live. Empty URL means SQLite in the data directory."""

    url: str = ""
    echo: bool = False


class GatewaySettings(BaseModel):
    """Device gateway behaviour."""

    command_timeout_s: float = Field(default=10.0, gt=0, le=120)
    max_frame_bytes: int = Field(default=1_000_000, gt=64)
    # How long wake_up waits for a quick wake before answering with the current state.
    wake_grace_s: float = Field(default=1.0, ge=0, le=30)
    # A car's presence record outlives a crashed process by at most this; refreshed every third.
    presence_ttl_s: float = Field(default=30.0, ge=0.5, le=3600)


class BusSettings(BaseModel):
    """Messages between processes. Empty URL: in-process only (the embedded profile)."""

    url: str = Field(default="", pattern=r"^$|^(nats|tls)://")


class KvSettings(BaseModel):
    """Shared short-lived state (presence, counters). Empty URL: in-process only."""

    url: str = Field(default="", pattern=r"^$|^(redis|rediss|unix)://")


class AuthSettings(BaseModel):
    """Access tokens Flotta mints and verifies."""

    issuer: str = "https://auth.flotta.local/oauth2/v3/nts"
    access_token_ttl_s: int = Field(default=28800, gt=0)
    # Tesla: refresh tokens are single use, live 3 months, and the last used one keeps
    # working for 24 h (reference §2.4).
    refresh_token_ttl_s: int = Field(default=90 * 86400, gt=0)
    refresh_grace_s: int = Field(default=86400, ge=0)
    id_token_ttl_s: int = Field(default=28800, gt=0)
    region: Literal["na", "eu", "cn"] = "na"


class PortalSettings(BaseModel):
    """The developer and owner portal (`/portal`)."""

    session_ttl_s: int = Field(default=12 * 3600, gt=0)
    # Secure cookies need HTTPS; None follows the scheme of FLOTTA_BASE_URL.
    cookie_secure: bool | None = None


class MailSettings(BaseModel):
    """Outgoing e-mail. With no SMTP host, messages stay in the outbox (shown in the portal)."""

    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    # Implicit TLS (port 465) or STARTTLS after connecting; both off for a loopback relay.
    smtp_tls: bool = False
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=120)
    from_address: str = "Flotta <no-reply@flotta.local>"


class PartnerSettings(BaseModel):
    """Partner registration (`POST /api/1/partner_accounts`) fetching the app's public key."""

    # Tesla's well-known path; tests point it at a loopback HTTP server. `{domain}` is required.
    key_url_template: str = Field(
        default="https://{domain}/.well-known/appspecific/com.tesla.3p.public-key.pem",
        pattern=r"^https?://.*\{domain\}",
    )
    key_fetch_timeout_s: float = Field(default=5.0, gt=0, le=30)


class RateLimitSettings(BaseModel):
    """Requests per app and device in each category, and per app on the token endpoint."""

    enabled: bool = True
    # `limits` notation: `60/minute`, `1000 per day`; reference §7's numbers by default.
    data: str = "60/minute"
    commands: str = "30/minute"
    wakes: str = "3/minute"
    token: str = "20/second"
    # Portal sign-in, second-factor, password-reset and sign-up posts per client address: the
    # per-account lock stops guessing one account, this stops trying one password on many.
    sign_in: str = "10/minute"

    @field_validator("data", "commands", "wakes", "token", "sign_in")
    @classmethod
    def _parse_limit(cls, value: str) -> str:
        try:
            item = limits.parse(value)
        except ValueError:
            item = None
        if item is None or item.amount < 1:
            raise ValueError(
                f"{value!r} is not a rate limit: write it as <count>/<second|minute|hour|day>, "
                "e.g. 60/minute (to switch limits off, set FLOTTA_RATELIMIT__ENABLED=false)"
            )
        return value


class BillingSettings(BaseModel):
    """The price book (units per 1 currency unit), the monthly credit and the billing policy."""

    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    streaming_per_currency_unit: int = Field(default=150_000, gt=0)
    commands_per_currency_unit: int = Field(default=1_000, gt=0)
    data_per_currency_unit: int = Field(default=500, gt=0)
    wakes_per_currency_unit: int = Field(default=50, gt=0)
    monthly_credit: Decimal = Field(default=Decimal("10.00"), ge=0, decimal_places=2)
    # `fair` bills only what was served; `tesla` bills every status below 500 (reference §8).
    policy: Literal["fair", "tesla"] = "fair"
    # Excessive-bill protection; None means "equal to the monthly credit", Tesla's default.
    threshold: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    # Meter Fleet API usage into the ledger; off only to measure what metering costs (P5).
    metering: bool = True

    @field_validator("monthly_credit", "threshold", mode="before")
    @classmethod
    def _money_is_text(cls, value: object) -> object:
        # A float has already lost the cent it was meant to be: money comes as "10.00".
        if isinstance(value, float):
            raise ValueError("write money as a decimal string with at most 2 places, e.g. 10.00")
        return value

    @property
    def effective_threshold(self) -> Decimal:
        return self.monthly_credit if self.threshold is None else self.threshold


class TelemetrySettings(BaseModel):
    """Streaming telemetry (issue 5)."""

    # Refuse a config whose hostname:port does not accept a TCP connection, as a car would fail.
    check_reachable: bool = True
    reachable_timeout_s: float = Field(default=3.0, gt=0, le=30)


class OutboundSettings(BaseModel):
    """Where the server may connect on a developer's behalf (flotta.outbound)."""

    # Networks besides public addresses that a telemetry hostname, a sink or a partner domain
    # may resolve to, e.g. ["10.20.0.0/16"] where your own brokers run. Unless it is set, a
    # demo (a sandbox on one machine, its receivers on localhost) allows every address.
    allow: list[IPvAnyNetwork] = []


class SimSettings(BaseModel):
    """The in-process simulator started by `flotta demo`."""

    vehicles: int = Field(default=4, ge=0, le=100_000)
    wake_profile: Literal["instant", "demo", "realistic"] = "demo"
    idle_sleep_s: float = Field(default=900.0, gt=0)
    seed: int = 7


class Settings(BaseSettings):
    """All of Flotta's settings. `profile=embedded` is the one-process SQLite default."""

    model_config = SettingsConfigDict(env_prefix="FLOTTA_", env_nested_delimiter="__")

    profile: Literal["embedded", "scaled"] = "embedded"
    demo: bool = False
    data_dir: Path = Path("./data")
    secret_key: str = DEMO_SECRET
    base_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=4443, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Prefix of every bus subject and kv key, so deployments (or test runs) can share servers.
    namespace: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")

    db: DatabaseSettings = DatabaseSettings()
    bus: BusSettings = BusSettings()
    kv: KvSettings = KvSettings()
    gateway: GatewaySettings = GatewaySettings()
    auth: AuthSettings = AuthSettings()
    portal: PortalSettings = PortalSettings()
    mail: MailSettings = MailSettings()
    partner: PartnerSettings = PartnerSettings()
    billing: BillingSettings = BillingSettings()
    ratelimit: RateLimitSettings = RateLimitSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    outbound: OutboundSettings = OutboundSettings()
    sim: SimSettings = SimSettings()

    @model_validator(mode="after")
    def _demo_reaches_everything(self) -> Settings:
        if self.demo and "allow" not in self.outbound.model_fields_set:
            self.outbound = OutboundSettings(allow=["0.0.0.0/0", "::/0"])
        return self

    @model_validator(mode="after")
    def _refuse_unworkable(self) -> Settings:
        if self.profile == "embedded" and self.workers > 1:
            raise ValueError(
                "the embedded profile runs one process on SQLite: set FLOTTA_WORKERS=1 "
                "or FLOTTA_PROFILE=scaled with PostgreSQL"
            )
        if self.profile == "scaled":
            self._refuse_single_process_parts()
        if not self.demo and self.secret_key == DEMO_SECRET:
            raise ValueError(
                "FLOTTA_SECRET_KEY is the public demo secret; set your own outside `flotta demo`"
            )
        if len(self.secret_key) < 16:
            raise ValueError("FLOTTA_SECRET_KEY must be at least 16 characters")
        return self

    def _refuse_single_process_parts(self) -> None:
        if self.database_url.startswith("sqlite"):
            raise ValueError("the scaled profile needs PostgreSQL: set FLOTTA_DB__URL")
        if not self.bus.url:
            raise ValueError(
                "the scaled profile needs NATS: set FLOTTA_BUS__URL=nats://…; the in-memory "
                "bus cannot route requests to a vehicle connected to another process"
            )
        if not self.kv.url:
            raise ValueError(
                "the scaled profile needs Redis: set FLOTTA_KV__URL=redis://…; the in-memory "
                "store cannot share vehicle presence between processes"
            )

    @property
    def database_url(self) -> str:
        if self.db.url:
            return self.db.url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'flotta.db'}"

    @property
    def public_base_url(self) -> str:
        return self.base_url.rstrip("/") or f"http://{self.host}:{self.port}"
