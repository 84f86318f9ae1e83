"""The compatibility table: every endpoint of Tesla's reference and where Flotta stands.

`python -m flotta.compat > docs/compatibility.md` regenerates the document; a test checks
that the document is current and that every endpoint marked done is a real route.
"""

from __future__ import annotations

from dataclasses import dataclass

from flotta.commands import COMMAND_NAMES, command_spec


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    status: str  # "done" or "issue N" (planned in that issue)
    note: str = ""


DONE = "done"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/status", DONE, "plain `ok`, no auth"),
    Endpoint("GET", "/api/1/users/me", DONE),
    Endpoint(
        "GET",
        "/api/1/users/region",
        DONE,
        "any valid token; `fleet_api_base_url` is this server's base URL",
    ),
    Endpoint("GET", "/api/1/users/orders", DONE, "one delivered order per vehicle"),
    Endpoint("GET", "/api/1/users/feature_config", DONE),
    Endpoint("GET", "/api/1/users/backup_key", DONE, "always `null`"),
    Endpoint("GET", "/api/1/products", DONE, "vehicles now; energy sites with issue 6"),
    Endpoint("GET", "/api/1/vehicles", DONE, "`page`, `per_page` (≤ 100), `pagination`"),
    Endpoint("GET", "/api/1/vehicles/{vehicle_tag}", DONE, "VIN or numeric id; never wakes"),
    Endpoint(
        "GET",
        "/api/1/vehicles/{vehicle_tag}/vehicle_data",
        DONE,
        "`endpoints` subset; location only with `location_data` and `vehicle_location`",
    ),
    Endpoint(
        "POST",
        "/api/1/vehicles/{vehicle_tag}/wake_up",
        DONE,
        "waits up to 1 s for a quick wake, then answers the current state",
    ),
    Endpoint("GET", "/api/1/vehicles/{vehicle_tag}/mobile_enabled", DONE),
    Endpoint(
        "GET",
        "/api/1/vehicles/{vehicle_tag}/nearby_charging_sites",
        DONE,
        "simulated Superchargers and destination chargers around the car",
    ),
    Endpoint(
        "GET",
        "/api/1/vehicles/{vehicle_tag}/recent_alerts",
        DONE,
        "the last 20 alerts the car sent (charge complete, Sentry events), newest first",
    ),
    Endpoint("GET", "/api/1/vehicles/{vehicle_tag}/release_notes", DONE),
    Endpoint("GET", "/api/1/vehicles/{vehicle_tag}/service_data", DONE),
    Endpoint("GET", "/api/1/vehicles/{vehicle_tag}/drivers", DONE),
    Endpoint("DELETE", "/api/1/vehicles/{vehicle_tag}/drivers", DONE),
    Endpoint(
        "POST",
        "/api/1/vehicles/{vehicle_tag}/drivers",
        DONE,
        "tescmd's `{email}` form: creates an invitation",
    ),
    Endpoint("GET", "/api/1/vehicles/{vehicle_tag}/invitations", DONE),
    Endpoint("POST", "/api/1/vehicles/{vehicle_tag}/invitations", DONE),
    Endpoint("POST", "/api/1/vehicles/{vehicle_tag}/invitations/{invitation_id}/revoke", DONE),
    Endpoint(
        "POST",
        "/api/1/invitations/redeem",
        DONE,
        "also accepts the code as a query key, as tesla-fleet-api sends it",
    ),
    Endpoint("POST", "/api/1/vehicles/fleet_status", DONE),
    Endpoint(
        "POST",
        "/api/1/vehicles/{vehicle_tag}/signed_command",
        DONE,
        "HMAC-personalised messages only; AES-GCM is refused, as on Tesla",
    ),
    Endpoint(
        "POST",
        "/api/1/vehicles/{vehicle_tag}/command/{command}",
        DONE,
        "every command listed below",
    ),
    Endpoint("GET", "/api/1/dx/vehicles/options", DONE),
    Endpoint("GET", "/api/1/dx/vehicles/subscriptions/eligibility", DONE),
    Endpoint("GET", "/api/1/dx/vehicles/upgrades/eligibility", DONE),
    Endpoint("GET", "/api/1/dx/warranty/details", DONE),
    Endpoint("GET", "/api/1/vehicles/{vehicle_tag}/specs", DONE, "owner or partner token"),
    Endpoint("GET", "/api/1/subscriptions", DONE, "registrations are kept; see below"),
    Endpoint("POST", "/api/1/subscriptions", DONE, "follow every visible vehicle"),
    Endpoint("GET", "/api/1/vehicle_subscriptions", DONE),
    Endpoint("POST", "/api/1/vehicle_subscriptions", DONE, "follow the listed `vehicle_ids`"),
    Endpoint(
        "GET",
        "/api/1/dx/enterprise/v1/{vin}/roles",
        "not supported",
        "business-only; Tesla has not published the shape (reference §4.3)",
    ),
    Endpoint(
        "POST",
        "/api/1/dx/enterprise/v1/{vin}/payer",
        "not supported",
        "business-only; body and answer unpublished",
    ),
    Endpoint(
        "POST",
        "/api/1/users/keys",
        "not supported",
        "undocumented key metadata the Go SDK posts; pairing arrives with issue 3",
    ),
    Endpoint("POST", "/api/1/vehicles/fleet_telemetry_config", "issue 5"),
    Endpoint("POST", "/api/1/vehicles/fleet_telemetry_config_jws", "issue 5"),
    Endpoint("GET", "/api/1/vehicles/{vehicle_tag}/fleet_telemetry_config", "issue 5"),
    Endpoint("DELETE", "/api/1/vehicles/{vehicle_tag}/fleet_telemetry_config", "issue 5"),
    Endpoint("GET", "/api/1/vehicles/{vehicle_tag}/fleet_telemetry_errors", "issue 5"),
    Endpoint("POST", "/api/1/partner_accounts", "issue 3"),
    Endpoint("GET", "/api/1/partner_accounts/public_key", "issue 3"),
    Endpoint("GET", "/api/1/partner_accounts/fleet_telemetry_errors", "issue 5"),
    Endpoint("GET", "/api/1/partner_accounts/fleet_telemetry_error_vins", "issue 5"),
    Endpoint(
        "POST",
        "/oauth2/v3/token",
        DONE,
        "`refresh_token` and `client_credentials`; `authorization_code` with issue 3",
    ),
    Endpoint(
        "POST",
        "/oauth2/v3/revoke",
        DONE,
        "RFC 7009 for refresh tokens (the whole family); access tokens: `unsupported_token_type`",
    ),
    Endpoint("GET", "/oauth2/v3/authorize", "issue 3"),
    Endpoint("GET", "/api/1/energy_sites/{energy_site_id}/live_status", "issue 6"),
    Endpoint("GET", "/api/1/energy_sites/{energy_site_id}/site_info", "issue 6"),
    Endpoint(
        "GET",
        "/api/1/dx/charging/history",
        "not planned yet",
        "Supercharger billing history; no simulated Supercharger billing exists",
    ),
)

DECISIONS: tuple[tuple[str, str], ...] = (
    (
        "Vehicle offline or asleep",
        "408 `vehicle unavailable: vehicle is offline or asleep` (the documented code; Tesla has "
        "also been seen answering 500 or 503).",
    ),
    (
        "Vehicle online but silent",
        "408 `vehicle unavailable: vehicle did not respond in time` after 10 s.",
    ),
    (
        "`wake_up` scope",
        "Either `vehicle_device_data` (2023 docs) or `vehicle_cmds` (scope list) is accepted.",
    ),
    (
        "`location_data` without `vehicle_location`",
        "The request succeeds without location members rather than failing with 403, so clients "
        "that always ask for location keep working.",
    ),
    ("Unknown `endpoints` value", "400 `invalid_field` naming the unknown values."),
    (
        "Bad command parameter",
        "400 `invalid_field` (a bad value) or `invalid_request` (a missing one), with the "
        "wording of Tesla's vehicle-command proxy (`invalid <x> param` / `missing <x> param`) "
        "and a `messages` member naming the field. The proxy's own key for a bad value is "
        "`invalid_value`; `invalid_field` is the key the Fleet API documents, which "
        "tesla-fleet-api maps to `InvalidField`.",
    ),
    ("Vehicle-side refusal", '200 `{"result": false, "reason": …}`, as Tesla.'),
    (
        "Commands the vehicle-command proxy forwards to REST",
        "`navigation_request` and `share` reach the car as a `navigationRequest` (the shared "
        'text becomes the route destination) and answer `{"result": true, "queued": true}`, as '
        "Tesla documents. `set_managed_charge_current_request` and "
        "`set_managed_scheduled_charging_time` reach it as the charging-amps and "
        "scheduled-charging actions. `set_managed_charger_location` has no action the simulator "
        "models: it is validated and acknowledged as queued, with no effect on the car.",
    ),
    (
        "Signed commands",
        "`signed_command` forwards the RoutableMessage unchanged to the car, which verifies it. "
        "The scope is taken from the decoded plaintext command; messages with no REST twin (ping, "
        "information requests) need `vehicle_cmds`.",
    ),
    (
        "Expired access token",
        "401 with error `token expired (401)` (Tesla sends no body; the "
        "Python client maps this key).",
    ),
    (
        "Token endpoint errors",
        'RFC 6749 bodies `{"error", "error_description"}` (no `response` member), with '
        "Tesla's keys: 400 `invalid_request`, `unsupported_grant_type`, `unauthorized_client` "
        "(unknown client or wrong secret), 401 `login_required` (expired, revoked or reused "
        "refresh token), 403 `invalid_scope`; always `Cache-Control: no-store`.",
    ),
    (
        "Refresh-token grace period",
        "Only the most recently used refresh token works for 24 h; each use within the grace "
        "mints a new token and retires the previous unused one. Presenting any other spent or "
        "retired token revokes the whole family (`login_required`).",
    ),
    (
        "Refresh `scope`",
        "A subset narrows the access token; a request naming only `openid email "
        "offline_access profile` (TeslaPy, teslajsonpy) keeps the family's API scopes. `scope` "
        "is echoed only when the grant equals the request.",
    ),
    ("`txid`", "Every error body carries a 32-hex `txid`, also sent as header `x-txid`."),
    (
        "Push subscriptions",
        "Registrations are stored and listed as Tesla's legacy endpoints describe; a self-hosted "
        "sandbox has no APNs/FCM credentials, so no notification is delivered to the device.",
    ),
    (
        "Drivers",
        "A driver who redeemed an invitation sees and commands the car "
        "(`access_type: DRIVER`); invitations and the driver list stay owner-only (404).",
    ),
)


def _command_rows() -> list[str]:
    rows = []
    for name in COMMAND_NAMES:
        spec = command_spec(name)
        scopes = " or ".join(sorted(spec.scopes))
        rows.append(f"| `{name}` | {spec.domain} | {scopes} | done |")
    return rows


def render() -> str:
    """The whole of docs/compatibility.md."""
    lines = [
        "# Compatibility with Tesla's Fleet API",
        "",
        "Generated by `python -m flotta.compat > docs/compatibility.md`; a test keeps it current.",
        "`done` means implemented and tested; `issue N` means planned in that open issue; "
        "`not supported` says why.",
        "",
        "## Endpoints",
        "",
        "| Method | Path | Status | Notes |",
        "|---|---|---|---|",
    ]
    lines += [f"| {e.method} | `{e.path}` | {e.status} | {e.note} |" for e in ENDPOINTS]
    lines += [
        "",
        "## Vehicle commands (`POST /api/1/vehicles/{vehicle_tag}/command/{name}`)",
        "",
        "| Command | Protocol domain | Scopes | Status |",
        "|---|---|---|---|",
        *_command_rows(),
        "",
        "## Where Tesla's behaviour is unconfirmed: what Flotta does",
        "",
        *[f"- **{topic}.** {choice}" for topic, choice in DECISIONS],
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
