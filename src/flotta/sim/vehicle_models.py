"""Catalogue of simulated vehicle models and VIN generation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FIRMWARE_VERSION = "2026.38.4 abcdef123456"

Mcu = Literal["MCU1", "MCU2", "MCU3"]
"""The infotainment computer: MCU1 is NVIDIA Tegra (S/X until 2018), MCU2 Intel Atom (S/X
2018-2021, early 3/Y), MCU3 AMD Ryzen. Fleet Telemetry depends on it (fleet-api.md §9.1)."""


@dataclass(frozen=True)
class VehicleModel:
    """Static characteristics of one model/trim, enough to drive the physics and config."""

    key: str
    display: str
    car_type: str  # vehicle_config.car_type
    telemetry_car_type: str  # CarTypeValue name
    trim_badging: str
    battery_kwh: float
    rated_range_mi: float
    wh_per_mi: float
    max_ac_amps: int
    ac_phases: int
    dc_peak_kw: float
    dc_taper_start_soc: float  # peak power held until this SoC (0-1)
    charge_port_type: str  # US | EU | CCS | GB
    wheel_type: str
    option_codes: str
    rear_seat_heaters: int
    third_row_seats: str
    has_third_row_heaters: bool
    has_sunroof: bool
    has_tonneau: bool
    has_seat_cooling: bool
    has_air_suspension: bool
    motorized_charge_port: bool
    vin_prefix: str  # WMI + VDS (8 chars, before the check digit)
    plant: str
    exterior_color: str
    model_code: str = "m3"  # the short code Tesla's apps use (m3, my, mx, ms, ct)
    firmware: str = FIRMWARE_VERSION
    model_year: int = 2026
    mcu: Mcu = "MCU3"

    @property
    def wheelbase_code(self) -> str:
        """Short model letter used in UIs and VINs."""
        return self.vin_prefix[3]


MODELS: dict[str, VehicleModel] = {
    m.key: m
    for m in (
        VehicleModel(
            key="model3_lr",
            model_code="m3",
            display="Model 3 Long Range",
            car_type="model3",
            telemetry_car_type="CarTypeModel3",
            trim_badging="74d",
            battery_kwh=78.0,
            rated_range_mi=341.0,
            wh_per_mi=229.0,
            max_ac_amps=48,
            ac_phases=1,
            dc_peak_kw=250.0,
            dc_taper_start_soc=0.40,
            charge_port_type="US",
            wheel_type="Photon18",
            option_codes="APF2,APH4,AU3P,BC3B,CH15,COUS,DRLH,FC3P,GLFR,HL32,MT353,PPSW,PRM31",
            rear_seat_heaters=1,
            third_row_seats="None",
            has_third_row_heaters=False,
            has_sunroof=False,
            has_tonneau=False,
            has_seat_cooling=True,
            has_air_suspension=False,
            motorized_charge_port=True,
            vin_prefix="5YJ3E1EB",
            plant="F",
            exterior_color="StealthGrey",
        ),
        VehicleModel(
            key="modely",
            model_code="my",
            display="Model Y Long Range",
            car_type="modely",
            telemetry_car_type="CarTypeModelY",
            trim_badging="74d",
            battery_kwh=78.0,
            rated_range_mi=327.0,
            wh_per_mi=245.0,
            max_ac_amps=48,
            ac_phases=1,
            dc_peak_kw=250.0,
            dc_taper_start_soc=0.42,
            charge_port_type="US",
            wheel_type="Apollo19",
            option_codes="APF2,APH4,AU3P,BC3B,CH15,COUS,DRLH,FC3P,MTY13,PPSW,PRMY1,STY7S",
            rear_seat_heaters=1,
            third_row_seats="FuturisFoldFlat",
            has_third_row_heaters=True,
            has_sunroof=False,
            has_tonneau=False,
            has_seat_cooling=True,
            has_air_suspension=False,
            motorized_charge_port=True,
            vin_prefix="7SAYGDEE",
            plant="A",
            exterior_color="PearlWhite",
        ),
        VehicleModel(
            key="models_plaid",
            model_code="ms",
            display="Model S Plaid",
            car_type="models",
            telemetry_car_type="CarTypeModelS",
            trim_badging="p100d",
            battery_kwh=95.0,
            rated_range_mi=368.0,
            wh_per_mi=258.0,
            max_ac_amps=48,
            ac_phases=1,
            dc_peak_kw=250.0,
            dc_taper_start_soc=0.45,
            charge_port_type="US",
            wheel_type="Tempest19",
            option_codes="APF2,APH4,AU3P,BC3R,CH15,COUS,DRLH,MTS14,PPMR,PRMS1,SC05",
            rear_seat_heaters=1,
            third_row_seats="None",
            has_third_row_heaters=False,
            has_sunroof=True,
            has_tonneau=False,
            has_seat_cooling=True,
            has_air_suspension=True,
            motorized_charge_port=True,
            vin_prefix="5YJSA1E6",
            plant="F",
            exterior_color="UltraRed",
        ),
        VehicleModel(
            key="cybertruck",
            model_code="ct",
            display="Cybertruck AWD",
            car_type="cybertruck",
            telemetry_car_type="CarTypeCybertruck",
            trim_badging="awd",
            battery_kwh=123.0,
            rated_range_mi=318.0,
            wh_per_mi=415.0,
            max_ac_amps=48,
            ac_phases=1,
            dc_peak_kw=325.0,
            dc_taper_start_soc=0.45,
            charge_port_type="US",
            wheel_type="Cybertruck20",
            option_codes="APF2,APH4,BC3B,COUS,CT01,DRLH,PPSS,PRCT1",
            rear_seat_heaters=1,
            third_row_seats="None",
            has_third_row_heaters=False,
            has_sunroof=False,
            has_tonneau=True,
            has_seat_cooling=True,
            has_air_suspension=True,
            motorized_charge_port=True,
            vin_prefix="7G2CEHED",
            plant="A",
            exterior_color="Stainless",
        ),
        # Older cars, not in the demo fleet: Fleet Telemetry refuses a pre-2021 S/X
        # (`unsupported_hardware`) unless it has the Intel Atom computer and firmware 2025.20+.
        VehicleModel(
            key="models_90d_2017",
            model_code="ms",
            display="Model S 90D (2017)",
            car_type="models",
            telemetry_car_type="CarTypeModelS",
            trim_badging="90d",
            battery_kwh=90.0,
            rated_range_mi=294.0,
            wh_per_mi=300.0,
            max_ac_amps=48,
            ac_phases=1,
            dc_peak_kw=120.0,
            dc_taper_start_soc=0.50,
            charge_port_type="US",
            wheel_type="Slipstream19",
            option_codes="AU01,BC0B,CH05,COUS,DRLH,MDLS,PMBL",
            rear_seat_heaters=1,
            third_row_seats="None",
            has_third_row_heaters=False,
            has_sunroof=True,
            has_tonneau=False,
            has_seat_cooling=False,
            has_air_suspension=True,
            motorized_charge_port=True,
            vin_prefix="5YJSA1E2",
            plant="F",
            exterior_color="SolidBlack",
            model_year=2017,
            mcu="MCU1",
        ),
        VehicleModel(
            key="modelx_lr_2019",
            model_code="mx",
            display="Model X Long Range (2019)",
            car_type="modelx",
            telemetry_car_type="CarTypeModelX",
            trim_badging="100d",
            battery_kwh=100.0,
            rated_range_mi=325.0,
            wh_per_mi=320.0,
            max_ac_amps=48,
            ac_phases=1,
            dc_peak_kw=200.0,
            dc_taper_start_soc=0.45,
            charge_port_type="US",
            wheel_type="Slipstream20",
            option_codes="AU01,BC0B,CH05,COUS,DRLH,MDLX,PPSW",
            rear_seat_heaters=1,
            third_row_seats="FuturisFoldFlat",
            has_third_row_heaters=True,
            has_sunroof=False,
            has_tonneau=False,
            has_seat_cooling=True,
            has_air_suspension=True,
            motorized_charge_port=True,
            vin_prefix="5YJXCBE2",
            plant="F",
            exterior_color="PearlWhite",
            model_year=2019,
            mcu="MCU2",
        ),
    )
}

_TRANSLIT = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# VIN position 10 (the model year) for 2010 onwards: letters without I, O, Q, U, Z.
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY"


def vin_model_year(vin: str) -> int | None:
    """The model year VIN position 10 encodes (2010 onwards); None for anything else."""
    index = _YEAR_CODES.find(vin[9:10]) if len(vin) == 17 else -1
    return None if index < 0 else 2010 + index


def vin_check_digit(vin: str) -> str:
    """ISO 3779 / 49 CFR 565 check digit for a 17-char VIN (position 9 ignored)."""
    total = sum(_TRANSLIT[c] * w for c, w in zip(vin.upper(), _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def make_vin(model: VehicleModel | str, serial: int) -> str:
    """A valid-looking VIN for `model` with a six-digit production `serial`."""
    m = MODELS[model] if isinstance(model, str) else model
    year = _YEAR_CODES[m.model_year - 2010]
    draft = f"{m.vin_prefix}0{year}{m.plant}{serial % 1_000_000:06d}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def get_model(key: str) -> VehicleModel:
    """Look a model up by key; raises KeyError naming the known keys."""
    try:
        return MODELS[key]
    except KeyError:
        raise KeyError(f"unknown model {key!r}; known: {', '.join(MODELS)}") from None
