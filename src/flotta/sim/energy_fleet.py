"""Simulated energy sites run together: identities on disk, start, wait, stop."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path

from flotta.sim.energy_device import SimSite
from flotta.sim.reconnect import cancel_all, wait_linked


@dataclass(frozen=True, slots=True)
class SiteIdentity:
    """What a site gateway keeps on its own storage: its id and its gateway credential."""

    site_id: int
    credential: str


def save_site_identities(path: Path, identities: list[SiteIdentity]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = [{"site_id": i.site_id, "credential": i.credential} for i in identities]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def load_site_identities(path: Path) -> list[SiteIdentity]:
    if not path.exists():
        return []
    return [
        SiteIdentity(int(d["site_id"]), str(d["credential"])) for d in json.loads(path.read_text())
    ]


class SiteFleet:
    """Runs each SimSite as a task."""

    def __init__(self, sites: list[SimSite]) -> None:
        self.sites = sites
        self._tasks: list[asyncio.Task[None]] = []

    def site(self, site_id: int) -> SimSite:
        for site in self.sites:
            if site.site_id == site_id:
                return site
        raise KeyError(site_id)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(s.run(), name=f"sim-site-{s.site_id}") for s in self.sites
        ]

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until every site is linked; TimeoutError says how many made it."""
        await wait_linked([s.connected for s in self.sites], timeout_s, "simulated energy sites")

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []
