"""streaming telemetry: configs, car-reported errors, the record log, sinks and deliveries

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "telemetry_configs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column(
            "vin",
            sa.String(17),
            sa.ForeignKey("vehicles.vin", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.Column("synced_at", _WHEN, nullable=True),
        sa.UniqueConstraint("client_id", "vin"),
    )
    op.create_index("ix_telemetry_configs_client_id", "telemetry_configs", ["client_id"])
    op.create_index("ix_telemetry_configs_vin", "telemetry_configs", ["vin"])
    op.create_table(
        "telemetry_errors",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
    )
    op.create_index("ix_telemetry_errors_client_id", "telemetry_errors", ["client_id"])
    op.create_index("ix_telemetry_errors_vin", "telemetry_errors", ["vin"])
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
    op.create_table(
        "telemetry_sinks",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(100), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("delivered_through", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_telemetry_sinks_client_id", "telemetry_sinks", ["client_id"])
    op.create_table(
        "telemetry_deliveries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "sink_id",
            _ID,
            sa.ForeignKey("telemetry_sinks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("first_record_id", sa.BigInteger(), nullable=False),
        sa.Column("last_record_id", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("replay", sa.Boolean(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
    )
    op.create_index("ix_telemetry_deliveries_sink_id", "telemetry_deliveries", ["sink_id"])


def downgrade() -> None:
    op.drop_table("telemetry_deliveries")
    op.drop_table("telemetry_sinks")
    op.drop_table("telemetry_records")
    op.drop_table("telemetry_errors")
    op.drop_table("telemetry_configs")
