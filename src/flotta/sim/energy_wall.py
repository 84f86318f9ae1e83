"""A Wall Connector: the site's EV charger, whose load is whatever the plugged-in car draws."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flotta.sim.vehicle_state import SimVehicle

# Tesla's wall_connector_state values as clients map them (Home Assistant's enum).
CHARGING = 2
DISCONNECTED = 4
CONNECTED = 5
CHARGING_FINISHED = 11


@dataclass
class WallConnector:
    """One charger; `vehicle` is the car on its cable (a cable, not a platform shortcut)."""

    din: str
    device_id: str
    vehicle: SimVehicle | None = None

    def plug(self, vehicle: SimVehicle | None) -> None:
        self.vehicle = vehicle

    def _on_ac(self) -> SimVehicle | None:
        car = self.vehicle
        if car is None or car.session is None or car.session.kind != "ac":
            return None
        return car

    def power_w(self) -> float:
        """Power the car draws through this connector now (W)."""
        car = self._on_ac()
        return car.charge_power_kw * 1000.0 if car is not None and car.is_charging else 0.0

    def state(self) -> int:
        car = self._on_ac()
        if car is None:
            return DISCONNECTED
        if car.is_charging:
            return CHARGING
        return CHARGING_FINISHED if car.charge_state == "Complete" else CONNECTED

    def live(self, power_w: float) -> dict[str, Any]:
        """The `live_status.wall_connectors[]` item."""
        car = self._on_ac()
        item: dict[str, Any] = {
            "din": self.din,
            "wall_connector_state": self.state(),
            "wall_connector_fault_state": 2,  # 2: no fault, as real units report
            "wall_connector_power": round(power_w, 1),
            "ocpp_status": 1,
        }
        if car is not None:
            item["vin"] = car.vin
        return item
