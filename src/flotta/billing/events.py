"""A usage event: one metered operation, billed to the developer account that owns the app."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from flotta.billing.categories import Category


class UsageEvent(NamedTuple):
    """A request, or a batch of streamed signals; `key` makes recording it idempotent.

    A tuple: every billed request builds one, and a frozen dataclass cost about 2 µs to build.
    Its fields, in this order, are the usage journal's line (journal.encode and decode).
    """

    key: str
    account_id: int
    client_id: str
    device: str
    category: Category
    quantity: int
    occurred_at: datetime
    status: int = 200
