"""`flotta admin vehicles`: transfer a vehicle to another account (sold), or delete it.

Both remove the vehicle's streaming configs. The cars hear of it at once through the bus when
the server is scaled (NATS); on the embedded profile the server's ingest tells a streaming car
within seconds, and every car is reconciled when it next connects.

As in `flotta.cli.admin`, the database modules are imported by the commands that use them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flotta.cli.admin import DataDir, _fail, _say, settings_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from flotta.devices.models import Vehicle
    from flotta.settings import Settings
    from flotta.telemetry.service import ConfigState

    Work = Callable[[AsyncSession], Awaitable[list[ConfigState]]]

vehicles_app = typer.Typer(
    help="Vehicles: transfer to another account, delete.", no_args_is_help=True
)


def _run(data_dir: Path, work: Work) -> list[ConfigState]:
    """`work` in one committed unit of work, then the cars are told of the removed configs."""
    from flotta.db.migrate import migrated
    from flotta.errors import FlottaError

    settings = settings_for(data_dir)

    async def main() -> list[ConfigState]:
        async with migrated(settings.database_url) as sessions, sessions() as db, db.begin():
            removed = await work(db)
        await _tell_cars(settings, removed)
        return removed

    try:
        return asyncio.run(main())
    except FlottaError as exc:
        raise _fail(exc.description) from exc


async def _tell_cars(settings: Settings, removed: list[ConfigState]) -> None:
    """Publish TELEMETRY_CONFIG_REMOVED where the server processes listen (scaled only)."""
    from flotta.adapters import open_bus
    from flotta.ports.bus import BusError
    from flotta.telemetry.sync import SUBJECT_PREFIX, removed_frame

    if not removed or not settings.bus.url:
        return
    bus = await open_bus(settings.bus.url, settings.namespace)
    try:
        for state in removed:
            await bus.publish(SUBJECT_PREFIX + state.vin, removed_frame(state.id))
    except BusError as exc:
        _say(f"warning: the cars were not told at once ({exc}); they sync when they reconnect")
    finally:
        await bus.close()


async def _vehicle(db: AsyncSession, vin: str) -> Vehicle:
    from flotta.devices.repository import VehicleRepository
    from flotta.errors import FlottaError

    vehicle = await VehicleRepository(db).by_vin(vin.strip().upper())
    if vehicle is None:
        raise FlottaError(f"no vehicle with VIN {vin!r}")
    return vehicle


def _configs(removed: list[ConfigState]) -> str:
    return f"{len(removed)} telemetry config{'' if len(removed) == 1 else 's'} removed"


@vehicles_app.command("transfer")
def transfer(
    vin: Annotated[str, typer.Argument(help="The vehicle's VIN")],
    to: Annotated[str, typer.Option("--to", help="E-mail address of the new owner's account")],
    data_dir: DataDir = Path("./data"),
) -> None:
    """Give a vehicle to another account (sold): drivers, invitations and configs go."""
    from flotta.accounts.repository import UserRepository
    from flotta.clock import SystemClock
    from flotta.errors import FlottaError
    from flotta.vehicles.lifecycle import transfer_vehicle

    async def work(db: AsyncSession) -> list[ConfigState]:
        owner = await UserRepository(db).by_email(to)
        if owner is None:
            raise FlottaError(f"no account with the e-mail address {to!r}")
        vehicle = await _vehicle(db, vin)
        return await transfer_vehicle(db, vehicle, owner, SystemClock().now())

    removed = _run(data_dir, work)
    _say(f"{vin.upper()} now belongs to {to}; {_configs(removed)}")


@vehicles_app.command("delete")
def delete(
    vin: Annotated[str, typer.Argument(help="The vehicle's VIN")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Remove a vehicle from the platform with its drivers, configs and history."""
    if not yes and not typer.confirm(f"Delete {vin.upper()} and everything recorded for it?"):
        raise typer.Exit(1)
    from flotta.vehicles.lifecycle import delete_vehicle

    async def work(db: AsyncSession) -> list[ConfigState]:
        return await delete_vehicle(db, await _vehicle(db, vin))

    removed = _run(data_dir, work)
    _say(f"{vin.upper()} deleted; {_configs(removed)}")
