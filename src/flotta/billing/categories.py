"""Which pricing category each Fleet API operation is billed under (reference §8).

Tesla publishes the category per endpoint only for some: every `…/command/*` is `commands`,
`vehicle_data` is `data`, `wake_up` is `wakes`, streamed signals are `streaming`, and
authentication is free. The rest is Flotta's choice, listed in docs/billing.md (generated from
this module) and docs/compatibility.md: reads of one device are `data`, writes to one device
are `commands`, account-level lists and settings are free.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Category(StrEnum):
    """A pricing category; a request outside all of them is free."""

    COMMANDS = "commands"
    DATA = "data"
    WAKES = "wakes"
    STREAMING = "streaming"


VEHICLE = "/api/1/vehicles/{vehicle_tag}"
ENERGY = "/api/1/energy_sites/{energy_site_id}"

# (method, path template regex, category or None for free), first match wins.
RULES: tuple[tuple[str, re.Pattern[str], Category | None, str], ...] = (
    ("POST", re.compile(rf"^{re.escape(VEHICLE)}/command/.+$"), Category.COMMANDS, "Tesla"),
    ("POST", re.compile(rf"^{re.escape(VEHICLE)}/signed_command$"), Category.COMMANDS, "Tesla"),
    ("POST", re.compile(rf"^{re.escape(VEHICLE)}/wake_up$"), Category.WAKES, "Tesla"),
    ("GET", re.compile(rf"^{re.escape(VEHICLE)}/vehicle_data$"), Category.DATA, "Tesla"),
    # Telemetry configuration is free; the signals it makes the car stream are `streaming`.
    ("*", re.compile(r"^/api/1/vehicles/.*fleet_telemetry.*$"), None, "Flotta"),
    # Sharing and drivers act on the account's access, not on the car.
    ("*", re.compile(rf"^{re.escape(VEHICLE)}/(drivers|invitations)(/.*)?$"), None, "Flotta"),
    ("GET", re.compile(rf"^{re.escape(VEHICLE)}$"), None, "Flotta"),
    ("GET", re.compile(rf"^{re.escape(VEHICLE)}/.+$"), Category.DATA, "Flotta"),
    ("GET", re.compile(rf"^{re.escape(ENERGY)}/.+$"), Category.DATA, "Flotta"),
    ("POST", re.compile(rf"^{re.escape(ENERGY)}/.+$"), Category.COMMANDS, "Flotta"),
)


def category_for(method: str, path: str) -> Category | None:
    """The category of an operation given its path template; None when it is free."""
    for rule_method, pattern, category, _ in RULES:
        if rule_method in ("*", method.upper()) and pattern.match(path):
            return category
    return None


def source_for(method: str, path: str) -> str:
    """Who decided the category: "Tesla" (documented) or "Flotta" (our choice); free is Tesla's
    rule for authentication and Flotta's for the other free operations."""
    for rule_method, pattern, _, source in RULES:
        if rule_method in ("*", method.upper()) and pattern.match(path):
            return source
    return "Tesla" if path.startswith("/oauth2/") else "Flotta"
