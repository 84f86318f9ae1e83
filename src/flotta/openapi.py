"""The OpenAPI document, exported to docs/openapi.json (`python -m flotta.openapi`)."""

from __future__ import annotations

import json
from typing import Any

from flotta.app import create_app
from flotta.settings import Settings


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document; building the app needs no database or network."""
    return create_app(Settings(demo=True)).openapi()


if __name__ == "__main__":
    print(json.dumps(openapi_document(), indent=2, sort_keys=True))
