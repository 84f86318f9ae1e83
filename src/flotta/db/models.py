"""Imports every model so the metadata is complete for Alembic and tests."""

from flotta.accounts.models import AccountToken, RecoveryCode, User, WebSession
from flotta.billing.models import (
    AppBudget,
    BillingAccount,
    BillingNotice,
    InvoiceRow,
    UsageDaily,
    UsageEventRow,
)
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
from flotta.telemetry.delivery_models import (
    TelemetryLeaseRow,
    TelemetryReceiverDeliveryRow,
    TelemetryReceiverRow,
)
from flotta.telemetry.models import (
    TelemetryConfigRow,
    TelemetryDeliveryRow,
    TelemetryErrorRow,
    TelemetryRecordGroupRow,
    TelemetrySinkRow,
)

metadata = Base.metadata

__all__ = [
    "AccountToken",
    "AppBudget",
    "AuthorizationCode",
    "BillingAccount",
    "BillingNotice",
    "ConsentGrant",
    "Driver",
    "EnergyBackupEvent",
    "EnergyInterval",
    "EnergySite",
    "Invitation",
    "InvoiceRow",
    "OAuthClient",
    "OutboxMessage",
    "PresenceEvent",
    "PushSubscription",
    "RecoveryCode",
    "RefreshFamily",
    "RefreshToken",
    "TelemetryConfigRow",
    "TelemetryDeliveryRow",
    "TelemetryErrorRow",
    "TelemetryLeaseRow",
    "TelemetryReceiverDeliveryRow",
    "TelemetryReceiverRow",
    "TelemetryRecordGroupRow",
    "TelemetrySinkRow",
    "UsageDaily",
    "UsageEventRow",
    "User",
    "Vehicle",
    "WebSession",
    "metadata",
]
