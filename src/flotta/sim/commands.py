"""Dispatch of infotainment `Action`s to handlers, plus the query-type actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tesla_protocol.command import car_server_pb2, vehicle_pb2

from flotta.sim import commands_charge, commands_climate, commands_vehicle
from flotta.sim.route import distance_mi

if TYPE_CHECKING:
    from flotta.sim.vehicle_state import SimVehicle

_SUPERCHARGERS = (
    ("Fremont, CA - Mission Blvd", 0.021, -0.013, 20, 250),
    ("Milpitas, CA - Great Mall", -0.034, 0.041, 32, 250),
    ("Newark, CA", 0.052, -0.061, 16, 150),
)


def ping(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """ping: echo the id with the car's clock."""
    resp.ping.ping_id = msg.ping_id
    resp.ping.local_timestamp.FromDatetime(v.now)
    if msg.HasField("local_timestamp"):
        resp.ping.last_remote_timestamp.CopyFrom(msg.local_timestamp)
    return None


def get_vehicle_data(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """getVehicleData: charge, climate, drive, location and closures from the live model."""
    data = resp.vehicleData
    _fill_charge(v, data.charge_state)
    _fill_climate(v, data.climate_state)
    _fill_drive(v, data.drive_state)
    _fill_location(v, data.location_state)
    _fill_closures(v, data.closures_state)
    for sub in (data.charge_state, data.climate_state, data.drive_state, data.location_state):
        sub.timestamp.FromDatetime(v.now)
    data.closures_state.timestamp.FromDatetime(v.now)
    return None


def _fill_charge(v: SimVehicle, cs: vehicle_pb2.ChargeState) -> None:
    s = v.sig
    getattr(cs.charging_state, v.charge_state).SetInParent()
    cs.battery_level = round(float(s["BatteryLevel"]))
    cs.usable_battery_level = round(float(s["BatteryLevel"]))
    cs.battery_range = float(s["RatedRange"])
    cs.est_battery_range = float(s["EstBatteryRange"])
    cs.ideal_battery_range = float(s["IdealBatteryRange"])
    cs.charge_limit_soc = int(s["ChargeLimitSoc"])
    cs.charge_limit_soc_std, cs.charge_limit_soc_min, cs.charge_limit_soc_max = 80, 50, 100
    cs.charge_energy_added = float(s["ChargeEnergyAdded"])
    cs.charge_miles_added_rated = float(s["ChargeMilesAddedRated"])
    cs.charger_voltage = int(s["ChargerVoltage"])
    cs.charger_actual_current = int(s["ChargerActualCurrent"])
    cs.charger_pilot_current = int(s["ChargerPilotCurrent"])
    cs.charger_power = round(float(s["ACChargingPower"]) + float(s["DCChargingPower"]))
    cs.charger_phases = int(s["ChargerPhases"])
    cs.minutes_to_full_charge = round(float(s["TimeToFullCharge"]) * 60)
    cs.charge_port_door_open = bool(s["ChargePortDoorOpen"])
    cs.charge_current_request = int(s["ChargeCurrentRequest"])
    cs.charge_current_request_max = int(s["ChargeCurrentRequestMax"])
    cs.charging_amps = int(s["ChargeCurrentRequest"])
    cs.fast_charger_present = bool(s["FastChargerPresent"])
    cable = str(s["ChargingCableType"]).removeprefix("CableType")
    getattr(cs.conn_charge_cable, cable).SetInParent()


def _fill_climate(v: SimVehicle, cl: vehicle_pb2.ClimateState) -> None:
    s = v.sig
    cl.inside_temp_celsius = float(s["InsideTemp"])
    cl.outside_temp_celsius = float(s["OutsideTemp"])
    cl.driver_temp_setting = float(s["HvacLeftTemperatureRequest"])
    cl.passenger_temp_setting = float(s["HvacRightTemperatureRequest"])
    cl.is_climate_on = v.hvac_on
    cl.is_auto_conditioning_on = v.hvac_on
    cl.fan_status = int(s["HvacFanStatus"])
    cl.seat_heater_left = int(s["SeatHeaterLeft"])
    cl.seat_heater_right = int(s["SeatHeaterRight"])
    cl.seat_heater_rear_left = int(s["SeatHeaterRearLeft"])
    cl.seat_heater_rear_right = int(s["SeatHeaterRearRight"])
    cl.seat_heater_rear_center = int(s["SeatHeaterRearCenter"])
    cl.bioweapon_mode_on = bool(s["BioweaponMode"])
    cl.steering_wheel_heater = bool(s["SteeringWheelHeater"])
    cl.is_preconditioning = bool(s["PreconditioningMax"])
    cl.is_front_defroster_on = s["DefrostMode"] != "DefrostModeStateOff"
    keeper = str(s["ClimateKeeperMode"]).removeprefix("ClimateKeeperModeState")
    getattr(cl.climate_keeper_mode, keeper).SetInParent()
    defrost = str(s["DefrostMode"]).removeprefix("DefrostModeState")
    getattr(
        cl.defrost_mode, defrost if defrost in ("Off", "Normal", "Max") else "Off"
    ).SetInParent()


def _fill_drive(v: SimVehicle, dr: vehicle_pb2.DriveState) -> None:
    s = v.sig
    getattr(dr.shift_state, "D" if v.driving else "P").SetInParent()
    if v.driving:
        dr.speed = round(float(s["VehicleSpeed"]))
        dr.speed_float = float(s["VehicleSpeed"])
    dr.power = int(s["DrivePower"])
    dr.odometer_in_hundredths_of_a_mile = round(float(s["Odometer"]) * 100)
    if s["DestinationName"]:
        dr.active_route_destination = str(s["DestinationName"])
        dr.active_route_miles_to_arrival = float(s["MilesToArrival"] or 0.0)
        dr.active_route_minutes_to_arrival = float(s["MinutesToArrival"] or 0.0)


def _fill_location(v: SimVehicle, loc: vehicle_pb2.LocationState) -> None:
    loc.latitude = loc.native_latitude = v.latitude
    loc.longitude = loc.native_longitude = v.longitude
    loc.heading = round(v.heading) % 360
    loc.gps_as_of = int(v.now.timestamp())
    loc.native_location_supported = True


def _fill_closures(v: SimVehicle, cl: vehicle_pb2.ClosuresState) -> None:
    doors = v.sig["DoorState"]
    cl.door_open_driver_front = doors["DriverFront"]
    cl.door_open_driver_rear = doors["DriverRear"]
    cl.door_open_passenger_front = doors["PassengerFront"]
    cl.door_open_passenger_rear = doors["PassengerRear"]
    cl.door_open_trunk_front = doors["TrunkFront"]
    cl.door_open_trunk_rear = doors["TrunkRear"]
    cl.locked = bool(v.sig["Locked"])
    cl.valet_mode = bool(v.sig["ValetModeEnabled"])
    cl.sun_roof_percent_open = int(v.sig["SunroofPercentOpen"])


def nearby_charging_sites(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """getNearbyChargingSites: a few fixed Superchargers around the car."""
    sites = resp.getNearbyChargingSites
    sites.timestamp.FromDatetime(v.now)
    count = int(msg.count) or len(_SUPERCHARGERS)
    for i, (name, dlat, dlon, stalls, kw) in enumerate(_SUPERCHARGERS[:count]):
        sc = sites.superchargers.add()
        sc.id = 1000 + i
        sc.name = name
        sc.location.latitude = v.latitude + dlat
        sc.location.longitude = v.longitude + dlon
        sc.distance_miles = distance_mi(
            v.latitude, v.longitude, v.latitude + dlat, v.longitude + dlon
        )
        sc.total_stalls = stalls
        sc.available_stalls = stalls - (i * 3) % stalls
        sc.max_power_kw = kw
        sc.within_range = True
    return None


HANDLERS: dict[str, commands_charge.Handler] = {
    **commands_charge.HANDLERS,
    **commands_climate.HANDLERS,
    **commands_vehicle.HANDLERS,
    "ping": ping,
    "getVehicleData": get_vehicle_data,
    "getNearbyChargingSites": nearby_charging_sites,
}


def execute_action(v: SimVehicle, action: car_server_pb2.Action) -> car_server_pb2.Response:
    """Run the action's handler and wrap the outcome in Tesla's `Response`."""
    resp = car_server_pb2.Response()
    which = None
    if action.WhichOneof("action_msg") == "vehicleAction":
        which = action.vehicleAction.WhichOneof("vehicle_action_msg")
    handler = HANDLERS.get(which) if which else None
    if handler is None:
        reason: str | None = "unknown_action"
    else:
        try:
            reason = handler(v, getattr(action.vehicleAction, str(which)), resp)
        except ValueError:  # an enum number the car does not know
            reason = "invalid_value"
    status = resp.actionStatus
    if reason is None:
        status.result = car_server_pb2.OPERATIONSTATUS_OK
    else:
        resp.Clear()
        resp.actionStatus.result = car_server_pb2.OPERATIONSTATUS_ERROR
        resp.actionStatus.result_reason.plain_text = reason
    return resp
