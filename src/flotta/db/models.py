"""Imports every model so the metadata is complete for Alembic and tests."""

from flotta.accounts.models import AccountToken, RecoveryCode, User, WebSession
from flotta.db.base import Base
from flotta.devices.models import PresenceEvent, Vehicle
from flotta.notifications.models import PushSubscription
from flotta.mail.models import OutboxMessage
from flotta.oauth.models import (
    AuthorizationCode,
    ConsentGrant,
    OAuthClient,
    RefreshFamily,
    RefreshToken,
)
from flotta.sharing.models import Driver, Invitation

metadata = Base.metadata

__all__ = [
    "AccountToken",
    "AuthorizationCode",
    "ConsentGrant",
    "OutboxMessage",
    "RecoveryCode",
    "WebSession",
    "Driver",
    "Invitation",
    "OAuthClient",
    "PresenceEvent",
    "PushSubscription",
    "RefreshFamily",
    "RefreshToken",
    "User",
    "Vehicle",
    "metadata",
]
