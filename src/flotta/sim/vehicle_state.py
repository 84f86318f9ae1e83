"""A simulated vehicle: physics integration, command execution and signal snapshots."""

from __future__ import annotations

import copy
import random
from datetime import datetime, timedelta
from typing import Any

from tesla_protocol.command import car_server_pb2, vcsec_pb2

from flotta.sim import charging, climate
from flotta.sim.charging import ChargeSession
from flotta.sim.commands import execute_action
from flotta.sim.defaults import DEFAULT_HOME, initial_signals, static_config
from flotta.sim.publish import derived_signals
from flotta.sim.route import Route
from flotta.sim.vcsec import execute_vcsec
from flotta.sim.vehicle_models import VehicleModel, get_model

STEP_S = 10.0
MAX_STEPS = 1500  # caps work per advance(); long jumps use coarser steps instead
SOFTWARE_INSTALL_S = 25 * 60
MIN_DRIVE_SOC = 0.02
COP_LIMITS_C = {
    "ClimateOverheatProtectionTempLimitLow": 30.0,
    "ClimateOverheatProtectionTempLimitMedium": 35.0,
    "ClimateOverheatProtectionTempLimitHigh": 40.0,
}
HVAC_RUNNING = ("HvacPowerStateOn", "HvacPowerStatePrecondition")


class SimVehicle:
    """Mutable state of one simulated car; time moves only through `advance`."""

    def __init__(
        self,
        vin: str,
        model: VehicleModel | str,
        rng: random.Random,
        now: datetime,
        home: tuple[float, float] = DEFAULT_HOME,
    ) -> None:
        self.vin = vin
        self.model = get_model(model) if isinstance(model, str) else model
        self.rng = rng
        self.home = home
        self.now = now
        self.last_activity = now
        self.soc = rng.uniform(0.45, 0.85)
        self.odometer_mi = rng.uniform(1500.0, 30000.0)
        self.lifetime_kwh = self.odometer_mi * self.model.wh_per_mi / 1000.0
        self.outside_mean_c = rng.uniform(6.0, 22.0)
        self.outside_swing_c = rng.uniform(3.0, 7.0)
        self.outside_c = climate.outside_temp_c(now, self.outside_mean_c, self.outside_swing_c)
        self.cabin_c = climate.passive_target_c(self.outside_c, now)
        self.route = Route.around(home, rng)
        self.route_mi = 0.0
        self.latitude, self.longitude = home
        self.heading = rng.uniform(0.0, 360.0)
        self.speed_mph = 0.0
        self.drive_power_kw = 0.0
        self.driving = False
        self.session: ChargeSession | None = None
        self.charge_requested = False
        self.charge_state = "Disconnected"
        self.charge_power_kw = 0.0
        self.energy_added_kwh = 0.0
        self.miles_added = 0.0
        self.cop_cooling = False
        self.tpms_bar = [round(rng.uniform(2.85, 2.95), 3) for _ in range(4)]
        self.tpms_seen = now
        self.valet_pin: str | None = None
        self.speed_limit_pin: str | None = None
        self.pin_to_drive: str | None = None
        self.software_install_started: datetime | None = None
        # Alerts raised since the device last sent them: (name, audiences, started_at).
        self.pending_alerts: list[tuple[str, list[str], datetime]] = []
        self.sig: dict[str, Any] = initial_signals(self.model, rng)
        self._sent: dict[str, Any] | None = None
        self._publish()

    # ---- scenario hooks -------------------------------------------------------------------

    def plug_in(
        self, kind: str = "ac", evse_amps: int = 48, station_kw: float = 250.0, phases: int = 0
    ) -> None:
        """Connect a charger: `ac` (wall connector / EVSE) or `dc` (Supercharger)."""
        if kind not in ("ac", "dc"):
            raise ValueError("kind must be 'ac' or 'dc'")
        if self.driving:
            self.park()
        eu = self.model.charge_port_type in ("EU", "CCS")
        self.session = ChargeSession(
            kind=kind,
            evse_amps=evse_amps,
            voltage=(400.0 if kind == "dc" else (230.0 if eu else 240.0)),
            phases=phases or (3 if eu and kind == "ac" else 1),
            station_kw=station_kw,
        )
        self.energy_added_kwh = 0.0
        self.miles_added = 0.0
        self.sig["ChargePortDoorOpen"] = True
        self.charge_requested = True
        self.charge_state = "Stopped"
        self._try_start_charging()
        self._touch()

    def unplug(self) -> None:
        """Disconnect the charger; the port door closes as on a motorised port."""
        self.session = None
        self.charge_requested = False
        self.charge_state = "Disconnected"
        self.charge_power_kw = 0.0
        self.sig["ChargePortDoorOpen"] = False
        self._touch()

    def start_drive(self) -> None:
        """Begin looping the route from the current route position."""
        if self.session is not None:
            self.unplug()
        self.driving = True
        self.sig["IsUserPresent"] = True
        self.sig["Locked"] = True
        self._touch()

    def park(self) -> None:
        """Stop driving and shift to P."""
        self.driving = False
        self.speed_mph = 0.0
        self.drive_power_kw = 0.0
        self.sig["IsUserPresent"] = False
        self.sig["RemoteStartActive"] = False
        self._touch()

    # ---- derived state --------------------------------------------------------------------

    @property
    def limit(self) -> float:
        """Charge limit as a fraction."""
        return float(self.sig["ChargeLimitSoc"]) / 100.0

    @property
    def is_charging(self) -> bool:
        """True while energy flows into the pack."""
        return self.charge_state in ("Charging", "Starting")

    @property
    def hvac_on(self) -> bool:
        """True while the HVAC conditions the cabin (user, keeper mode or preconditioning)."""
        return self.sig["HvacPower"] in HVAC_RUNNING

    @property
    def busy(self) -> bool:
        """A charging, driving, conditioning or guarding car stays awake."""
        return (
            self.is_charging
            or self.driving
            or self.hvac_on
            or self.sig["SentryMode"] != "SentryModeStateOff"
        )

    def _touch(self) -> None:
        self.last_activity = self.now

    def _try_start_charging(self) -> str | None:
        """Start charging if possible; returns Tesla's reason when it cannot."""
        if self.session is None:
            return "disconnected"
        if self.is_charging:
            return "is_charging"
        if self.soc >= self.limit - 1e-6:
            self.charge_state = "Complete"
            return "complete"
        self.charge_requested = True
        self.charge_state = "Charging"
        return None

    # ---- time -----------------------------------------------------------------------------

    def advance(self, now: datetime) -> None:
        """Integrate physics from the last time to `now` in bounded steps."""
        total = (now - self.now).total_seconds()
        if total <= 0:
            return
        step = max(STEP_S, total / MAX_STEPS)
        elapsed = 0.0
        start = self.now
        while elapsed < total - 1e-9:
            dt = min(step, total - elapsed)
            elapsed += dt
            self.now = start + timedelta(seconds=elapsed)
            self._step(dt)
        self.now = now
        self._advance_software_update()
        self._publish()

    def _step(self, dt: float) -> None:
        self.outside_c = climate.outside_temp_c(self.now, self.outside_mean_c, self.outside_swing_c)
        self._step_climate(dt)
        self._step_charging(dt)
        self._step_drive(dt)
        self._step_sentry(dt)
        if self.is_charging or self.driving:
            self.last_activity = self.now
        self.tpms_seen = self.now if self.driving else self.tpms_seen

    def _step_sentry(self, dt: float) -> None:
        """An armed car records a passer-by now and then: about twice an hour."""
        armed = self.sig["SentryMode"] not in ("SentryModeStateOff", "SentryModeStateUnknown")
        if armed and self.rng.random() < dt / 1800.0:
            self.pending_alerts.append(("SentryModeEvent", ["Customer"], self.now))

    def _step_climate(self, dt: float) -> None:
        setpoint = float(self.sig["HvacLeftTemperatureRequest"])
        if self.sig["PreconditioningMax"] or self.sig["DefrostMode"] == "DefrostModeStateMax":
            setpoint = climate.MAX_TEMP_C
        cop_limit = COP_LIMITS_C.get(str(self.sig["CabinOverheatProtectionTemperatureLimit"]), 40.0)
        cop_on = self.sig["CabinOverheatProtectionMode"] != "CabinOverheatProtectionModeStateOff"
        self.cop_cooling = (
            cop_on and not self.hvac_on and not self.driving and self.cabin_c > cop_limit
        )
        if self.hvac_on:
            self.cabin_c = climate.cabin_step(self.cabin_c, setpoint, dt, climate.HVAC_TAU_S)
            self._drain_kwh(climate.hvac_power_kw(self.cabin_c, setpoint) * dt / 3600.0)
            self._auto_seat_climate()
        elif self.cop_cooling:
            self.cabin_c = climate.cabin_step(self.cabin_c, cop_limit - 1, dt, climate.HVAC_TAU_S)
            self._drain_kwh(climate.HVAC_BASE_KW * dt / 3600.0)
        else:
            target = climate.passive_target_c(self.outside_c, self.now)
            self.cabin_c = climate.cabin_step(self.cabin_c, target, dt, climate.PASSIVE_TAU_S)

    def _auto_seat_climate(self) -> None:
        level = (
            3 if self.cabin_c < 15 else 2 if self.cabin_c < 19 else 1 if self.cabin_c < 21 else 0
        )
        for side in ("Left", "Right"):
            if self.sig[f"AutoSeatClimate{side}"]:
                self.sig[f"SeatHeater{side}"] = level
        if self.sig["HvacSteeringWheelHeatAuto"]:
            self.sig["HvacSteeringWheelHeatLevel"] = 3 if level >= 2 else 1 if level else 0
            self.sig["SteeringWheelHeater"] = level > 0

    def _step_charging(self, dt: float) -> None:
        self.charge_power_kw = 0.0
        if self.session is None or not self.is_charging:
            return
        if self.soc >= self.limit - 1e-6:
            self.charge_state = "Complete"
            return
        power = charging.charge_power_kw(self.model, self.soc, self._ac_amps(), self.session)
        pack_kwh = charging.pack_power_kw(self.session, power) * dt / 3600.0
        room_kwh = (self.limit - self.soc) * self.model.battery_kwh
        added = min(pack_kwh, room_kwh)
        self.soc += added / self.model.battery_kwh
        self.energy_added_kwh += added
        self.miles_added += added * 1000.0 / self.model.wh_per_mi
        self.charge_power_kw = power
        if added >= room_kwh - 1e-9:
            self.soc = self.limit
            self.charge_state = "Complete"
            self.pending_alerts.append(("ChargingComplete", ["Customer"], self.now))

    def _ac_amps(self) -> int:
        if self.session is None:
            return 0
        return charging.ac_amps(self.model, int(self.sig["ChargeCurrentRequest"]), self.session)

    def _step_drive(self, dt: float) -> None:
        if not self.driving:
            return
        if self.soc <= MIN_DRIVE_SOC:
            self.park()
            return
        pos = self.route.position(self.route_mi)
        miles = pos.speed_mph * dt / 3600.0
        self.route_mi += miles
        self.odometer_mi += miles
        kwh = miles * self.model.wh_per_mi / 1000.0
        self._drain_kwh(kwh)
        self.lifetime_kwh += kwh
        moved = self.route.position(self.route_mi)
        self.latitude, self.longitude, self.heading = moved.latitude, moved.longitude, moved.heading
        self.speed_mph = moved.speed_mph
        self.drive_power_kw = moved.speed_mph * self.model.wh_per_mi / 1000.0

    def _drain_kwh(self, kwh: float) -> None:
        self.soc = max(0.0, self.soc - kwh / self.model.battery_kwh)

    def _advance_software_update(self) -> None:
        status = self.sig["SoftwareUpdateStatus"]
        start_s = self.sig["SoftwareUpdateScheduledStartTime"]
        if status == "scheduled" and start_s is not None and self.now.timestamp() >= start_s:
            if self.driving or self.is_charging:
                return
            self.sig["SoftwareUpdateStatus"] = "installing"
            self.software_install_started = self.now
            status = "installing"
        if status == "installing" and self.software_install_started is not None:
            done = (self.now - self.software_install_started).total_seconds() / SOFTWARE_INSTALL_S
            self.sig["SoftwareUpdateInstallationPercentComplete"] = min(100, int(done * 100))
            if done >= 1.0:
                self.sig["Version"] = self.sig["SoftwareUpdateVersion"]
                self.sig.update(
                    SoftwareUpdateStatus="",
                    SoftwareUpdateVersion="",
                    SoftwareUpdateScheduledStartTime=None,
                    SoftwareUpdateInstallationPercentComplete=0,
                    SoftwareUpdateDownloadPercentComplete=0,
                    SoftwareUpdateExpectedDurationMinutes=0,
                )
                self.software_install_started = None

    # ---- publishing -----------------------------------------------------------------------

    def _publish(self) -> None:
        """Write physics-derived signals into the signal map, rounded to what a car reports."""
        self.sig.update(derived_signals(self))

    def snapshot(self) -> dict[str, Any]:
        """Every signal with its current value (Tesla Field and FlottaField names)."""
        return {k: _copied(v) for k, v in self.sig.items()}

    def changes(self) -> dict[str, Any]:
        """Signals changed since the previous call; the first call returns everything."""
        sent = self._sent
        if sent is None:
            out = self.snapshot()
            self._sent = self.snapshot()
            return out
        # Runs after every command and tick: copy only what changed, not the whole map.
        out = {k: _copied(v) for k, v in self.sig.items() if k not in sent or sent[k] != v}
        sent.update({k: _copied(v) for k, v in out.items()})
        return out

    def config(self) -> dict[str, Any]:
        """Static vehicle_config and defaults for the renderer."""
        return static_config(self.model)

    # ---- commands -------------------------------------------------------------------------

    def execute(self, action: car_server_pb2.Action) -> car_server_pb2.Response:
        """Apply an infotainment `Action` and answer as the car would."""
        response = execute_action(self, action)
        self._touch()
        self._publish()
        return response

    def execute_vcsec(self, msg: vcsec_pb2.UnsignedMessage) -> vcsec_pb2.FromVCSECMessage:
        """Apply a VCSEC (security domain) message and answer as the car would."""
        response = execute_vcsec(self, msg)
        self._touch()
        self._publish()
        return response


def _copied(value: Any) -> Any:
    """Scalars as they are; containers (locations, doors, schedules) deep-copied."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value
