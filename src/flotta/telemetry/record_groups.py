"""How the record log stores records: a group per app, car and ingest batch, one row each.

A row per record cost the gateway's event loop about 6 µs per record in SQLite binding and
lock hand-offs (measured beside a busy loop); a row per group costs it next to nothing. The
group's `body` is columnar, so encoding and decoding are a few C calls per group:

    u8 format (1) | u32 n | n x u8 topic code | n x u32 signals | n x u32 payload length |
    the n payloads, back to back                       (integers little-endian)

Its `txids` column lists the records' txids one per line, with a newline before the first and
after the last, so a resend's txid is found with a substring search in the database.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate, pairwise
from typing import Any

from flotta.telemetry.records import StreamRecord

FORMAT = 1
TOPICS = ("V", "alerts", "errors", "connectivity")
TOPIC_CODES = {topic: code for code, topic in enumerate(TOPICS)}
_HEAD = struct.Struct("<BI")
TXID_SEPARATOR = "\n"


@dataclass(slots=True)
class NewGroup:
    """Records of one app and one car to store together, in arrival order (txids as the car
    sent them; stored and streamed as UTF-8 text, an invalid byte as U+FFFD)."""

    client_id: str
    vin: str
    txids: list[bytes] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    signals: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)

    def add(self, txid: bytes, topic: str, signals: int, payload: bytes) -> None:
        self.txids.append(txid)
        self.topics.append(topic)
        self.signals.append(signals)
        self.payloads.append(payload)

    def __len__(self) -> int:
        return len(self.txids)


@dataclass(frozen=True, slots=True)
class StoredGroup:
    """Where a group landed: its cursors, what it bills, and when it was stored."""

    first_cursor: int
    last_cursor: int
    client_id: str
    vin: str
    signals: int
    created_at: datetime


def encode_body(topics: Sequence[str], signals: Sequence[int], payloads: Sequence[bytes]) -> bytes:
    """A group's `body` (see the module docstring)."""
    count = len(payloads)
    try:
        codes = bytes([TOPIC_CODES[topic] for topic in topics])
    except KeyError as exc:
        raise ValueError(f"the record log stores only {', '.join(TOPICS)} records") from exc
    numbers = struct.pack(f"<{2 * count}I", *signals, *map(len, payloads))
    return b"".join((_HEAD.pack(FORMAT, count), codes, numbers, *payloads))


def decode_body(body: bytes) -> tuple[list[str], Sequence[int], list[bytes]]:
    """(topics, signals, payloads) of a group's `body`."""
    version, count = _HEAD.unpack_from(body)
    if version != FORMAT:
        raise ValueError(f"unknown record group format {version}")
    at = _HEAD.size
    topics = [TOPICS[code] for code in body[at : at + count]]
    at += count
    numbers = struct.unpack_from(f"<{2 * count}I", body, at)
    at += 8 * count
    ends = accumulate(numbers[count:], initial=at)
    payloads = [body[start:end] for start, end in pairwise(ends)]
    return topics, numbers[:count], payloads


def txid_text(txids: Sequence[bytes]) -> str:
    """The `txids` column: one per line, a newline before the first and after the last
    (decoded at once: an invalid byte cannot take the newline after it with it)."""
    return TXID_SEPARATOR + b"\n".join(txids).decode(errors="replace") + TXID_SEPARATOR


def txid_needle(txid: str) -> str:
    """What a group's `txids` contains when it holds this txid."""
    return TXID_SEPARATOR + txid + TXID_SEPARATOR


def group_row(group: NewGroup, first: int, created_at: Any) -> tuple[Any, ...]:
    """The row's values in `ROW_COLUMNS` order; `created_at` as the driver takes it."""
    count = len(group.txids)
    return (
        first,
        first + count - 1,
        group.client_id,
        group.vin,
        count,
        sum(group.signals),
        created_at,
        txid_text(group.txids),
        encode_body(group.topics, group.signals, group.payloads),
    )


ROW_COLUMNS = (
    "first_cursor",
    "last_cursor",
    "client_id",
    "vin",
    "records",
    "signals",
    "created_at",
    "txids",
    "body",
)


def expand(
    first: int,
    client_id: str,
    vin: str,
    created_at: datetime,
    txids: str,
    body: bytes,
    after: int = 0,
    limit: int | None = None,
) -> list[StreamRecord]:
    """A stored group's records with a cursor above `after`, in order, at most `limit` (a
    page of a large group builds only the records it returns)."""
    topics, signals, payloads = decode_body(body)
    names = txids[1:-1].split(TXID_SEPARATOR)
    skip = max(0, after - first + 1)
    end = None if limit is None else skip + limit
    return [
        StreamRecord(first + i, client_id, vin, topics[i], names[i], created_at, signals[i], p)
        for i, p in enumerate(payloads[skip:end], skip)
    ]


def stream_records(group: NewGroup, first: int, created_at: datetime) -> list[StreamRecord]:
    """A group just stored, as records with their cursors (for the live streams)."""
    client_id, vin = group.client_id, group.vin
    topics, signals, payloads = group.topics, group.signals, group.payloads
    names = txid_text(group.txids)[1:-1].split(TXID_SEPARATOR)
    return [
        StreamRecord(first + i, client_id, vin, topics[i], txid, created_at, signals[i], p)
        for i, (txid, p) in enumerate(zip(names, payloads, strict=True))
    ]
