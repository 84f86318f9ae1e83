"""Which priced operation a request is: its route's category and the device it names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from flotta.billing.categories import Category, category_for

# Where the metering middleware leaves the Target it found, so rate limits need not match again.
TARGET_KEY = "flotta.target"
VIN_LENGTH = 17


@dataclass(frozen=True, slots=True)
class Target:
    """A limited operation: its category and the `{vehicle_tag}` or `{energy_site_id}`."""

    category: Category
    kind: Literal["vehicle", "site"]
    tag: str
    # The device as the ledger and dashboard name it: a vehicle by VIN, a site by id; None for
    # a vehicle's Fleet id, which only the directory can turn into its VIN.
    device: str | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Worked out once per path (Targets caches the Target), not on every billed request.
        if self.kind == "site":
            device: str | None = f"site:{self.tag}"
        elif len(self.tag) == VIN_LENGTH:  # a Fleet id is shorter
            device = f"vehicle:{self.tag.upper()}"
        else:
            device = None
        object.__setattr__(self, "device", device)


class Targets:
    """Route matches cached by method and path, so a repeated request skips route matching."""

    def __init__(self, max_entries: int = 8192) -> None:
        self._cache: dict[tuple[str, str], Target | None] = {}
        self._max = max_entries

    def of(self, scope: Scope, routes: Sequence[BaseRoute]) -> Target | None:
        key = (scope["method"], scope["path"])
        try:
            return self._cache[key]
        except KeyError:
            pass
        target = match_target(scope, routes)
        if len(self._cache) >= self._max:
            # Paths carry vehicle tags, so the key space is open-ended: start over, stay bounded.
            self._cache.clear()
        self._cache[key] = target
        return target


def match_target(scope: Scope, routes: Sequence[BaseRoute]) -> Target | None:
    """The route Starlette would pick (first full match); None for free or unknown operations."""
    for route in routes:
        found, child = route.matches(scope)
        if found is not Match.FULL:
            continue
        template = str(getattr(route, "path_format", ""))
        category = category_for(scope["method"], template)
        params = child.get("path_params", {})
        if category is None:
            return None
        if "vehicle_tag" in params:
            return Target(category, "vehicle", str(params["vehicle_tag"]))
        if "energy_site_id" in params:
            return Target(category, "site", str(params["energy_site_id"]))
        return None
    return None
