"""The OAuth scopes a token may carry (reference §2.5), apart from tokens.py so that the CLI can
name them without loading the web stack."""

from __future__ import annotations

# What an owner may grant an app, as `flotta demo` and `flotta token` use.
OWNER_SCOPES = [
    "openid",
    "offline_access",
    "user_data",
    "vehicle_device_data",
    "vehicle_location",
    "vehicle_cmds",
    "vehicle_charging_cmds",
    "energy_device_data",
    "energy_cmds",
]
# Every scope a token may carry: the above plus the OIDC extras Tesla's server accepts.
KNOWN_SCOPES = frozenset(OWNER_SCOPES) | {"email", "profile"}
