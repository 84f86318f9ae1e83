"""Generated requests against the energy endpoints, with real site ids: no 5xx, the envelope."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from flotta.openapi import openapi_document
from tests.live import LiveDemo

DOCUMENT = openapi_document()
DOCUMENT["paths"] = {p: v for p, v in DOCUMENT["paths"].items() if "/energy_sites/" in p}
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_generated_energy_requests_never_break_the_server(
    live: LiveDemo, operation: object, mode: GenerationMode
) -> None:
    strategy = operation.as_strategy(generation_mode=mode)  # type: ignore[attr-defined]
    real_ids = st.sampled_from([*live.info["energy_sites"], 1, None])

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=strategy, site=real_ids)
    def check(case: schemathesis.Case, site: int | None) -> None:
        if case.path_parameters and site is not None:
            case.path_parameters["energy_site_id"] = site
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {live.token}"}
        response = case.call(base_url=live.base_url, timeout=15)
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        body = response.json()
        assert "response" in body
        if response.status_code >= 400:
            assert body["response"] is None and body["error"]

    try:
        check()
    except Unsatisfiable:
        assert mode == GenerationMode.NEGATIVE
