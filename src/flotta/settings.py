"""Configuration: pydantic-settings with the FLOTTA_ prefix and nested groups (FLOTTA_DB__URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
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
    sim: SimSettings = SimSettings()

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
