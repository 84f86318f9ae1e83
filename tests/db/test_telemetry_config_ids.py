"""Migration 0010: SQLite never reuses a telemetry config's id, and upgrading keeps every row
(the configs and the receiver rows that reference them)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from flotta.db.engine import make_engine
from flotta.db.migrate import upgrade_to, upgrade_to_head

NOW = "2026-12-08 00:00:00"


async def test_upgrading_keeps_rows_and_ids_are_never_reused(tmp_path: Path) -> None:

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ids.db'}")
    try:
        await upgrade_to(engine, "0009")
        async with engine.begin() as db:
            await db.execute(text(
                "INSERT INTO users (id, uuid, email, full_name, region, created_at, is_admin) "
                f"VALUES (1, 'u1', 'o@example.com', 'O', 'eu', '{NOW}', 0)"
            ))  # fmt: skip
            await db.execute(text(
                "INSERT INTO vehicles (id, vehicle_id, vin, owner_id, display_name, model, "
                "option_codes, credential_hash, command_signing, config, created_at) VALUES "
                f"(7, 70, '5YJ3E1EB0TF100001', 1, 'car', 'model3_lr', '', 'h', 'allowed', '{{}}', "
                f"'{NOW}')"
            ))  # fmt: skip
            for config_id in (1, 2):
                await db.execute(text(
                    "INSERT INTO telemetry_configs (id, client_id, vin, config, version, status, "
                    f"created_at, updated_at) VALUES ({config_id}, 'app{config_id}', "
                    f"'5YJ3E1EB0TF100001', '{{}}', 1, 'synced', '{NOW}', '{NOW}')"
                ))  # fmt: skip
            await db.execute(text(
                "INSERT INTO telemetry_receivers (config_id, client_id, vin, delivered_through, "
                f"updated_at) VALUES (2, 'app2', '5YJ3E1EB0TF100001', 42, '{NOW}')"
            ))  # fmt: skip
        await upgrade_to_head(engine)
        async with engine.begin() as db:
            kept = (await db.execute(text("SELECT id FROM telemetry_configs"))).scalars().all()
            position = await db.scalar(text("SELECT delivered_through FROM telemetry_receivers"))
            await db.execute(text("DELETE FROM telemetry_configs WHERE id = 2"))
            await db.execute(text(
                "INSERT INTO telemetry_configs (client_id, vin, config, version, status, "
                f"created_at, updated_at) VALUES ('app3', '5YJ3E1EB0TF100001', '{{}}', 1, "
                f"'pending', '{NOW}', '{NOW}')"
            ))  # fmt: skip
            newest = await db.scalar(text("SELECT max(id) FROM telemetry_configs"))
    finally:
        await engine.dispose()
    assert sorted(kept) == [1, 2] and position == 42
    assert newest == 3  # not 2 again: the removed config's id stays retired
