"""What goes in and out of the apps domain: portal form input and partner JSON bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field

from flotta.oauth.models import OAuthClient


@dataclass(frozen=True, slots=True)
class ApplicationInput:
    """The application form exactly as typed (textareas hold one entry per line)."""

    name: str = ""
    description: str = ""
    intended_use: str = ""
    website: str = ""
    domain: str = ""
    redirect_uris: str = ""
    allowed_origins: str = ""
    scopes: tuple[str, ...] = ()
    client_type: str = "confidential"


@dataclass(frozen=True, slots=True)
class ValidApplication:
    """An application that passed every check, normalised for storage."""

    name: str
    description: str
    intended_use: str
    website: str
    domain: str
    redirect_uris: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    client_type: str = "confidential"


def iso(value: datetime | None) -> str | None:
    """Tesla's timestamps: ISO 8601 in UTC with a Z."""
    return value.isoformat().replace("+00:00", "Z") if value else None


class PartnerAccountRequest(BaseModel):
    """`POST /api/1/partner_accounts` body (reference §3.2)."""

    domain: str = Field(
        max_length=253,
        description="Lower-case host name without https://; shares the root domain of an "
        "allowed origin of the app",
        examples=["app.example.com"],
    )


class PartnerAccount(BaseModel):
    """The partner account Tesla answers after registration (reference §3.2)."""

    client_id: str
    name: str
    description: str
    domain: str
    ca: str | None = None
    created_at: str
    updated_at: str
    enterprise_tier: str = "free"
    public_key: str = Field(description="Uncompressed P-256 point as hex (04…, 130 chars)")

    @classmethod
    def of(cls, app: OAuthClient) -> PartnerAccount:
        return cls(
            client_id=app.client_id,
            name=app.name,
            description=app.description,
            domain=app.domain,
            created_at=iso(app.created_at) or "",
            updated_at=iso(app.partner_registered_at or app.created_at) or "",
            public_key=app.public_key or "",
        )


class PartnerAccountEnvelope(BaseModel):
    response: PartnerAccount


class PublicKeyBody(BaseModel):
    public_key: str = Field(description="Uncompressed P-256 point as hex (04…, 130 chars)")


class PublicKeyEnvelope(BaseModel):
    response: PublicKeyBody
