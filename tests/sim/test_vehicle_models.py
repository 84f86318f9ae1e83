"""The simulated catalogue's VINs: valid, and their model year reads back as the model's."""

from __future__ import annotations

import pytest

from flotta.sim.vehicle_models import MODELS, make_vin, vin_check_digit, vin_model_year
from flotta.vehicles.ownership import specs


@pytest.mark.parametrize("key", sorted(MODELS))
def test_a_made_vin_carries_its_model_year_and_a_valid_check_digit(key: str) -> None:
    vin = make_vin(key, 123_456)
    assert vin_model_year(vin) == MODELS[key].model_year
    assert vin[8] == vin_check_digit(vin)
    # What vehicle_specs answers for it (a 2017 or 2019 car once answered null).
    assert specs(vin, key, "")["model_year"] == MODELS[key].model_year


@pytest.mark.parametrize("vin", ["", "5YJ3E1EA", "5YJ3E1EA7ZF000001"])
def test_a_vin_without_a_2010s_year_code_has_no_model_year(vin: str) -> None:
    assert vin_model_year(vin) is None
