"""energy sites, their metered intervals and backup events

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)
FLOWS = (
    "solar_to_home",
    "solar_to_battery",
    "solar_to_grid",
    "grid_to_home",
    "grid_to_battery",
    "battery_to_home",
    "battery_to_grid",
    "wall_connector",
)


def _site_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["site_id"],
        ["energy_sites.id"],
        name=op.f(f"fk_{table}_site_id_energy_sites"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "energy_sites",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("site_uid", sa.String(length=40), nullable=False),
        sa.Column("owner_id", _ID, nullable=False),
        sa.Column("site_name", sa.String(length=100), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=16), nullable=False),
        sa.Column("gateway_din", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("credential_hash", sa.String(length=64), nullable=False),
        sa.Column("installed_at", _WHEN, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_energy_sites_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_energy_sites")),
        sa.UniqueConstraint("site_uid", name=op.f("uq_energy_sites_site_uid")),
    )
    with op.batch_alter_table("energy_sites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_energy_sites_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "energy_intervals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("start_at", _WHEN, nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in FLOWS],
        _site_fk("energy_intervals"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_energy_intervals")),
        sa.UniqueConstraint("site_id", "start_at", name=op.f("uq_energy_intervals_site_id")),
    )

    op.create_table(
        "energy_backup_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        _site_fk("energy_backup_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_energy_backup_events")),
        sa.UniqueConstraint("site_id", "started_at", name=op.f("uq_energy_backup_events_site_id")),
    )


def downgrade() -> None:
    op.drop_table("energy_backup_events")
    op.drop_table("energy_intervals")
    with op.batch_alter_table("energy_sites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_energy_sites_owner_id"))
    op.drop_table("energy_sites")
