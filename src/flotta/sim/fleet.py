"""A simulated fleet: many SimDevices sharing a clock, started and stopped together."""

from __future__ import annotations

import asyncio
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from flotta.clock import Clock, ScaledClock
from flotta.settings import SimSettings
from flotta.sim.device import DeviceOptions, SimDevice
from flotta.sim.power import PROFILES, PowerManager
from flotta.sim.reconnect import cancel_all, wait_linked
from flotta.sim.vcp import KeyWhitelist, VehicleVerifier, generate_private_key
from flotta.sim.vehicle_state import SimVehicle

INFOTAINMENT = 3
VCSEC = 2


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """What a device keeps on its own storage: its VIN, model and gateway credential."""

    vin: str
    model: str
    credential: str


def save_identities(path: Path, identities: list[DeviceIdentity]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = [{"vin": i.vin, "model": i.model, "credential": i.credential} for i in identities]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)  # atomic: a crash never leaves half a credentials file


def load_identities(path: Path) -> list[DeviceIdentity]:
    if not path.exists():
        return []
    return [
        DeviceIdentity(d["vin"], d["model"], d["credential"]) for d in json.loads(path.read_text())
    ]


class SimFleet:
    """Builds one SimDevice per identity and runs them as tasks."""

    def __init__(
        self,
        identities: list[DeviceIdentity],
        *,
        url: str,
        clock: Clock,
        wake_profile: str = "demo",
        idle_sleep_s: float = 900.0,
        seed: int = 7,
        tick_s: float = 1.0,
    ) -> None:
        self.clock = clock
        self.devices: list[SimDevice] = []
        options = DeviceOptions(url=url, tick_s=tick_s)
        for index, identity in enumerate(identities):
            rng = random.Random(seed * 1_000_003 + index)
            vehicle = SimVehicle(identity.vin, identity.model, rng, clock.now())
            power = PowerManager(
                PROFILES[wake_profile], rng=rng, now=clock.now(), idle_timeout_s=idle_sleep_s
            )
            whitelist = KeyWhitelist()
            verifiers = {
                d: VehicleVerifier(
                    identity.vin, d, generate_private_key(), clock.monotonic, whitelist=whitelist
                )
                for d in (VCSEC, INFOTAINMENT)
            }
            self.devices.append(
                SimDevice(
                    identity.credential, vehicle, power, verifiers, whitelist, clock, options, rng
                )
            )
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def configured(
        cls,
        identities: list[DeviceIdentity],
        *,
        url: str,
        sim: SimSettings,
        speed: float = 1.0,
        tick_s: float = 1.0,
    ) -> SimFleet:
        """A fleet with the operator's simulator settings on a clock `speed` times real time."""
        return cls(
            identities,
            url=url,
            clock=ScaledClock(speed),
            wake_profile=sim.wake_profile,
            idle_sleep_s=sim.idle_sleep_s,
            seed=sim.seed,
            tick_s=tick_s,
        )

    def device(self, vin: str) -> SimDevice:
        for device in self.devices:
            if device.vin == vin:
                return device
        raise KeyError(vin)

    def start(self, connects_per_s: float = 250.0) -> None:
        """Start every device, spreading first connects so a big fleet is no handshake storm."""
        self._tasks = [
            asyncio.create_task(self._run_after(d, i / connects_per_s), name=f"sim-{d.vin}")
            for i, d in enumerate(self.devices)
        ]

    @staticmethod
    async def _run_after(device: SimDevice, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await device.run()

    def connected_count(self) -> int:
        return sum(d.connected.is_set() for d in self.devices)

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until every device is linked; TimeoutError says how many made it."""
        await wait_linked([d.connected for d in self.devices], timeout_s, "simulated vehicles")

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []
