"""the record log in groups: one row per app, car and ingest batch instead of one per record

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 03:00:00.000000

Every record keeps its cursor: each old row becomes a group of one whose first and last cursor
are the row's id, so streams and sinks resume where they were. The group body's format (1) is
written out here rather than imported, so this migration reads and writes what it always did.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)
_PAGE = 1_000
_TOPICS = ("V", "alerts", "errors", "connectivity")
_HEAD = struct.Struct("<BI")

_RECORDS = sa.table(
    "telemetry_records",
    sa.column("id", _ID),
    sa.column("client_id", sa.String),
    sa.column("vin", sa.String),
    sa.column("topic", sa.String),
    sa.column("txid", sa.String),
    sa.column("signals", sa.Integer),
    sa.column("created_at", _WHEN),
    sa.column("payload", sa.LargeBinary),
)
_GROUPS = sa.table(
    "telemetry_record_groups",
    sa.column("first_cursor", _ID),
    sa.column("last_cursor", sa.BigInteger),
    sa.column("client_id", sa.String),
    sa.column("vin", sa.String),
    sa.column("records", sa.Integer),
    sa.column("signals", sa.BigInteger),
    sa.column("created_at", _WHEN),
    sa.column("txids", sa.Text),
    sa.column("body", sa.LargeBinary),
)


def upgrade() -> None:
    op.create_table(
        "telemetry_record_groups",
        sa.Column("first_cursor", _ID, primary_key=True, autoincrement=False),
        sa.Column("last_cursor", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("signals", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("txids", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
    )
    op.create_index(
        "ix_telemetry_record_groups_client_cursor",
        "telemetry_record_groups",
        ["client_id", "last_cursor"],
    )
    op.create_index(
        "ix_telemetry_record_groups_client_time",
        "telemetry_record_groups",
        ["client_id", "created_at"],
    )
    op.create_index("ix_telemetry_record_groups_vin", "telemetry_record_groups", ["vin"])
    bind = op.get_bind()
    for rows in _pages(bind, _RECORDS, _RECORDS.c.id):
        bind.execute(sa.insert(_GROUPS), [_group_of_one(row) for row in rows])
    op.drop_index("ix_telemetry_records_created_at", table_name="telemetry_records")
    op.drop_index("ix_telemetry_records_client_id", table_name="telemetry_records")
    op.drop_table("telemetry_records")


def downgrade() -> None:
    op.create_table(
        "telemetry_records",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("topic", sa.String(16), nullable=False),
        sa.Column("txid", sa.String(64), nullable=False),
        sa.Column("signals", sa.Integer(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_telemetry_records_client_id", "telemetry_records", ["client_id"])
    op.create_index("ix_telemetry_records_created_at", "telemetry_records", ["created_at"])
    bind = op.get_bind()
    for groups in _pages(bind, _GROUPS, _GROUPS.c.first_cursor):
        rows = [row for group in groups for row in _rows_of(group)]
        bind.execute(sa.insert(_RECORDS), rows)
    if bind.dialect.name == "postgresql":
        # Ids were written explicitly: the sequence continues after them.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('telemetry_records', 'id'), "
            "coalesce(max(id), 0) + 1, false) FROM telemetry_records"
        )
    op.drop_index("ix_telemetry_record_groups_vin", table_name="telemetry_record_groups")
    op.drop_index("ix_telemetry_record_groups_client_time", table_name="telemetry_record_groups")
    op.drop_index("ix_telemetry_record_groups_client_cursor", table_name="telemetry_record_groups")
    op.drop_table("telemetry_record_groups")


def _pages(bind: Any, table: Any, key: Any) -> Iterator[list[Any]]:
    """The table's rows in key order, a page at a time."""
    last = None
    while True:
        query = sa.select(table).order_by(key).limit(_PAGE)
        if last is not None:
            query = query.where(key > last)
        rows = bind.execute(query).all()
        if not rows:
            return
        yield rows
        last = rows[-1]._mapping[key.name]


def _group_of_one(row: Any) -> dict[str, Any]:
    if row.topic not in _TOPICS:
        raise ValueError(f"telemetry record {row.id} has topic {row.topic!r}, not a stored one")
    # The txid list is newline-separated: a (never seen) newline or NUL becomes U+FFFD.
    txid = row.txid.replace("\n", "\ufffd").replace("\x00", "\ufffd")
    payload = bytes(row.payload)
    body = b"".join(
        (
            _HEAD.pack(1, 1),
            bytes([_TOPICS.index(row.topic)]),
            struct.pack("<2I", row.signals, len(payload)),
            payload,
        )
    )
    return {
        "first_cursor": row.id,
        "last_cursor": row.id,
        "client_id": row.client_id,
        "vin": row.vin,
        "records": 1,
        "signals": row.signals,
        "created_at": row.created_at,
        "txids": f"\n{txid}\n",
        "body": body,
    }


def _rows_of(group: Any) -> Iterator[dict[str, Any]]:
    body = bytes(group.body)
    _, count = _HEAD.unpack_from(body)
    at = _HEAD.size
    codes = body[at : at + count]
    numbers = struct.unpack_from(f"<{2 * count}I", body, at + count)
    at += 9 * count
    txids = group.txids[1:-1].split("\n")
    for index in range(count):
        length = numbers[count + index]
        yield {
            "id": group.first_cursor + index,
            "client_id": group.client_id,
            "vin": group.vin,
            "topic": _TOPICS[codes[index]],
            "txid": txids[index],
            "signals": numbers[index],
            "created_at": group.created_at,
            "payload": body[at : at + length],
        }
        at += length
