"""Imports every model so the metadata is complete for Alembic and tests."""

from flotta.accounts.models import User
from flotta.db.base import Base
from flotta.devices.models import PresenceEvent, Vehicle
from flotta.notifications.models import PushSubscription
from flotta.oauth.models import OAuthClient, RefreshFamily, RefreshToken
from flotta.sharing.models import Driver, Invitation

metadata = Base.metadata

__all__ = [
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
