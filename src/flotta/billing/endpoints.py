"""`POST /flotta/v1/billing/estimate`: the spend estimator over HTTP (a Flotta extension).

It reads no account data, so it needs no token; the price book is the server's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from flotta.billing.estimator import estimate, to_result
from flotta.billing.prices import PriceBook
from flotta.billing.schemas import EstimateEnvelope, EstimateRequest
from flotta.fleet.deps import RuntimeDep
from flotta.fleet.errors_doc import ErrorEnvelope
from flotta.fleet.responses import envelope

router = APIRouter(tags=["billing"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": EstimateEnvelope, "description": "A month's cost per category, exact"},
    400: {
        "model": ErrorEnvelope,
        "description": "A bad input; `messages` names each field (e.g. `fields.0.name`)",
    },
}


@router.post(
    "/flotta/v1/billing/estimate",
    responses=RESPONSES,
    summary="Estimate a month's spend (Flotta extension, no token needed)",
)
async def estimate_spend(body: EstimateRequest, runtime: RuntimeDep) -> Response:
    """Price the described usage with this server's price book, before and after the credit."""
    book = PriceBook.from_settings(runtime.settings.billing)
    return envelope(to_result(estimate(book, body)).model_dump(mode="json"))
