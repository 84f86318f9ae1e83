"""A usage event: one metered operation, billed to the developer account that owns the app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flotta.billing.categories import Category


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """A request, or a batch of streamed signals; `key` makes recording it idempotent."""

    key: str
    account_id: int
    client_id: str
    device: str
    category: Category
    quantity: int
    occurred_at: datetime
    status: int = 200

    @property
    def day(self) -> date:
        return self.occurred_at.date()
