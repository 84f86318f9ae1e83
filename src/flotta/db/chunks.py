"""IN lists cut into pieces one statement can bind.

SQLAlchemy binds one parameter per value of an IN list, and asyncpg refuses a statement with
more than 32,767 of them (SQLite's limit depends on how it was built: 32,766 by default). Lists
that grow with the fleet, or with ids the cars choose, are read chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

IN_LIST_CHUNK = 5_000
"""Values per IN list: far below every limit, with room for a second list beside it."""


def chunked(values: Iterable[T], size: int = IN_LIST_CHUNK) -> Iterator[list[T]]:
    """`values` in lists of at most `size`, in order; none for no values."""
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]
