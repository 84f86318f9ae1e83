"""The `flotta` command: demo, serve, sim, token and db."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from flotta.auth.scopes import OWNER_SCOPES
from flotta.cli.admin import admin_app
from flotta.cli.billing import billing_app
from flotta.cli.vehicles import vehicles_app
from flotta.settings import Settings

app = typer.Typer(help="Flotta: an open, self-hostable Fleet API.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
admin_app.add_typer(vehicles_app, name="vehicles")
app.add_typer(billing_app, name="billing")
console = Console()

DataDir = Annotated[Path, typer.Option("--data-dir", help="Where SQLite, keys and demo.json live")]


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValueError as exc:
        console.print(f"[red]configuration error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc


def _demo_settings(data_dir: Path, host: str, port: int, vehicles: int, wake: str) -> Settings:
    base = _settings(demo=True)
    return _settings(
        demo=True,
        data_dir=data_dir,
        host=host,
        port=port,
        sim={**base.sim.model_dump(), "vehicles": vehicles, "wake_profile": wake},
    )


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one")] = 4443,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    data_dir: DataDir = Path("./data"),
    vehicles: Annotated[int, typer.Option(min=1, max=1000)] = 4,
    speed: Annotated[float, typer.Option(help="Simulated clock speed (1 = real time)")] = 1.0,
    wake_profile: Annotated[str, typer.Option(help="instant, demo or realistic")] = "demo",
) -> None:
    """Run the embedded sandbox: API, gateway and a simulated fleet on SQLite."""
    from flotta.demo import serve_demo

    settings = _demo_settings(data_dir, host, port, vehicles, wake_profile)

    async def main() -> None:
        await _preflight(settings)
        ready = asyncio.Event()
        task = asyncio.create_task(serve_demo(settings, speed=speed, ready=ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            waiter.cancel()
            await task
            return
        _print_banner(settings.data_dir / "demo.json")
        tune_gc_for_serving()
        await task

    _run(main)


# Net allocations of tracked objects between young-generation collections (Python's default
# is 700). Measured with ad-hoc gc.callbacks in a `flotta serve` process while
# bench/telemetry.py (P1) drove it: with the default, collections took 0.85 s of its 16.3 s of
# CPU, among them a full pass every few seconds of about 30 ms (after the startup heap is frozen;
# 135 ms before); with this value 0.40 s, most of it the full passes while starting, and it
# ingested about 10 % more signals a second.
YOUNG_GC_THRESHOLD = 10_000


def tune_gc_for_serving() -> None:
    """Leave what startup built (the app, its routes, models, caches) out of the garbage
    collector's full passes: they lasted about 135 ms each under load, walking objects that
    live as long as the process. Then collect the young generation less often (see
    YOUNG_GC_THRESHOLD). Only the server commands do this; tests build many apps in one process
    and must be able to collect them."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)


def _print_banner(path: Path) -> None:
    import json

    info = json.loads(path.read_text())
    # Plain print: rich would wrap the token across lines and break copy-and-paste.
    print(f"Flotta demo ready at {info['base_url']}")
    print(f"access token: {info['access_token']}")
    print("vehicles: " + ", ".join(info["vehicles"]))
    if info.get("energy_sites"):
        print("energy sites: " + ", ".join(str(s) for s in info["energy_sites"]))
    print(f"portal: {info['portal_url']}")
    for role in ("developer", "owner"):
        person = info.get(role) or {}
        if person.get("password"):
            extra = f" (TOTP secret {person['totp_secret']})" if person.get("totp_secret") else ""
            print(f"{role} sign-in: {person['email']} / {person['password']}{extra}")
    print(f"written to {path}; press Ctrl-C to stop", flush=True)


async def _preflight(settings: Settings) -> None:
    from flotta.preflight import StartupError, check_before_start

    try:
        await check_before_start(settings)
    except StartupError as exc:
        console.print(f"[red]cannot start:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc


def _run(main: Any) -> None:
    """Run a long-lived command on the event loop `flotta serve` gets from uvicorn: uvloop where
    it is installed (uvicorn[standard] brings it), asyncio's own elsewhere."""
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        console.print(f"[red]cannot start:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    console.print("stopped")


@app.command()
def serve() -> None:
    """Run the API and gateway with settings from FLOTTA_* environment variables."""
    from uvicorn.config import STARTUP_FAILURE

    from flotta.app import create_app
    from flotta.server import FlottaServer, server_config

    settings = _settings()
    asyncio.run(_preflight(settings))

    async def started(_: object) -> None:
        tune_gc_for_serving()

    app = create_app(settings, on_started=started)
    config = server_config(
        app, settings, host=settings.host, port=settings.port, log_level=settings.log_level
    )
    # What uvicorn.run does with one worker, with the server that ends telemetry streams.
    server = FlottaServer(config, app)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise typer.Exit(STARTUP_FAILURE)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed; None (asyncio's own) elsewhere."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@app.command()
def sim(
    connect: Annotated[str, typer.Option(help="Gateway URL, e.g. ws://127.0.0.1:4443")],
    vehicles: Annotated[int, typer.Option(min=0, max=100_000)] = 4,
    energy_sites: Annotated[int, typer.Option(min=0, max=10_000, help="Simulated homes")] = 0,
    data_dir: DataDir = Path("./data"),
    speed: float = 1.0,
    wake_profile: str = "demo",
    tick: Annotated[float, typer.Option(help="Wall seconds between state ticks")] = 1.0,
) -> None:
    """Run simulated vehicles and energy sites in this process against a gateway elsewhere."""
    from flotta.sim.runner import run_remote_fleet

    settings = _demo_settings(data_dir, "127.0.0.1", 0, vehicles, wake_profile)
    _run(
        lambda: run_remote_fleet(
            settings, connect, speed=speed, tick_s=tick, console=console, energy_sites=energy_sites
        )
    )


@app.command()
def token(
    email: Annotated[str, typer.Option(help="Account the token acts for")] = "owner@flotta.demo",
    scopes: Annotated[str, typer.Option(help="Space-separated scopes")] = " ".join(OWNER_SCOPES),
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 28800,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Mint an access token for an account (the demo owner by default)."""
    from flotta.cli.tokens import mint_for

    settings = (
        _demo_settings(data_dir, "127.0.0.1", 4443, 1, "demo")
        if _is_demo(data_dir)
        else _settings(data_dir=data_dir)
    )
    try:
        print(asyncio.run(mint_for(settings, email, scopes.split(), ttl)))
    except LookupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    except ValueError as exc:
        console.print(f"[red]invalid scopes:[/red] {exc}")
        raise typer.Exit(2) from exc


def _is_demo(data_dir: Path) -> bool:
    return (data_dir / "demo.json").exists()


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = Path("./data")) -> None:
    """Migrate the database to the newest schema."""
    from flotta.db.migrate import migrated

    settings = _settings(data_dir=data_dir)

    async def main() -> None:
        with contextlib.suppress(Exception):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        async with migrated(settings.database_url):
            pass

    asyncio.run(main())
    console.print("database at head")


def main() -> None:
    app()
