"""Imports every model so the metadata is complete for Alembic and tests."""

from flotta.accounts.models import AccountToken, RecoveryCode, User, WebSession
from flotta.db.base import Base
from flotta.devices.models import PresenceEvent, Vehicle
from flotta.energy.models import EnergyBackupEvent, EnergyInterval, EnergySite
from flotta.mail.models import OutboxMessage
from flotta.notifications.models import PushSubscription
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
    "Driver",
    "EnergyBackupEvent",
    "EnergyInterval",
    "EnergySite",
    "Invitation",
    "OAuthClient",
    "OutboxMessage",
    "PresenceEvent",
    "PushSubscription",
    "RecoveryCode",
    "RefreshFamily",
    "RefreshToken",
    "User",
    "Vehicle",
    "WebSession",
    "metadata",
]
