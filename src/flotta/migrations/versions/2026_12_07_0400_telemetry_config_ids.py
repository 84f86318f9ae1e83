"""telemetry config ids are never reused (SQLite AUTOINCREMENT)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:00:00.000000

A config's id names it to the car (frames 14-16) and to ingest. Without AUTOINCREMENT, SQLite
gives a new row the highest id plus one, so once the newest config was removed (consent
revoked, a key or driver removed, the car sold) the next config took its id: a car still
holding the old one kept running it, and ingest took the new config's records for resends of
the old one's. PostgreSQL's sequences never reuse a value: nothing to do there.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Rows that reference a config: SQLite drops the old table while foreign keys are on, and the
# implicit DELETE would cascade to them, so they are kept aside and put back.
_CHILDREN = ("telemetry_receivers", "telemetry_receiver_deliveries")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for child in _CHILDREN:
        op.execute(f"CREATE TEMP TABLE keep_{child} AS SELECT * FROM {child}")
    with op.batch_alter_table(
        "telemetry_configs",
        recreate="always",
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ):
        pass
    for child in _CHILDREN:
        op.execute(f"INSERT INTO {child} SELECT * FROM keep_{child}")
        op.execute(f"DROP TABLE keep_{child}")


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
