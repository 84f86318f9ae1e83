"""Tesla's success envelope, serialised with orjson on the hot path."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def envelope(payload: Any, *, status: int = 200, **extra: Any) -> Response:
    """`{"response": payload, **extra}` as application/json."""
    body = {"response": payload, **extra}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def paginated(items: list[Any], *, page: int, per_page: int, total: int) -> Response:
    """A list with Tesla's `count` and `pagination` members."""
    pages = max(1, -(-total // per_page))
    pagination = {
        "previous": page - 1 if page > 1 else None,
        "next": page + 1 if page < pages else None,
        "current": page,
        "per_page": per_page,
        "count": total,
        "pages": pages,
    }
    return envelope(items, count=len(items), pagination=pagination)
