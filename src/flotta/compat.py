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
ENERGY = "/api/1/energy_sites/{energy_site_id}"

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
    Endpoint(
        "GET",
        "/api/1/products",
        DONE,
        "vehicles, then energy sites (`energy_site_id`, `resource_type`, `components`)",
    ),
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
        "undocumented key metadata the Go SDK posts; virtual-key pairing is not simulated",
    ),
    Endpoint(
        "POST",
        "/api/1/vehicles/fleet_telemetry_config",
        DONE,
        "every mistake named by JSON path; receiver reachability checked; one call per app",
    ),
    Endpoint(
        "POST",
        "/api/1/vehicles/fleet_telemetry_config_jws",
        DONE,
        "Tesla.SS256 verified against the app's registered public key",
    ),
    Endpoint(
        "GET",
        "/api/1/vehicles/{vehicle_tag}/fleet_telemetry_config",
        DONE,
        "plus `version`, `status` (pending, synced, error), `updated_at`, `synced_at`, `error`",
    ),
    Endpoint(
        "DELETE",
        "/api/1/vehicles/{vehicle_tag}/fleet_telemetry_config",
        DONE,
        "the car stops at once; a partner token may delete on any vehicle",
    ),
    Endpoint(
        "GET",
        "/api/1/vehicles/{vehicle_tag}/fleet_telemetry_errors",
        DONE,
        "includes configs the car refused, with its reason",
    ),
    Endpoint(
        "POST",
        "/api/1/partner_accounts",
        DONE,
        "partner token; key fetched from the domain's .well-known path, else the portal upload",
    ),
    Endpoint("GET", "/api/1/partner_accounts/public_key", DONE, "any registered domain"),
    Endpoint("GET", "/api/1/partner_accounts/fleet_telemetry_errors", DONE, "newest first"),
    Endpoint("GET", "/api/1/partner_accounts/fleet_telemetry_error_vins", DONE),
    Endpoint(
        "POST",
        "/oauth2/v3/token",
        DONE,
        "`authorization_code` (S256 PKCE), `refresh_token` and `client_credentials`",
    ),
    Endpoint(
        "POST",
        "/oauth2/v3/revoke",
        DONE,
        "RFC 7009 for refresh tokens (the whole family); access tokens: `unsupported_token_type`",
    ),
    Endpoint(
        "GET",
        "/oauth2/v3/authorize",
        DONE,
        "sign-in, then consent choosing scopes, vehicles and energy sites; `NA_` codes",
    ),
    Endpoint("GET", f"{ENERGY}/live_status", DONE, "asked of the site's gateway; 408 offline"),
    Endpoint("GET", f"{ENERGY}/site_info", DONE, "installation plus the site's own settings"),
    Endpoint("GET", f"{ENERGY}/site_status", DONE, "owner-API summary teslajsonpy reads"),
    Endpoint(
        "GET",
        f"{ENERGY}/calendar_history",
        DONE,
        "`kind` energy or backup; `period` day, week, month, year, lifetime; site time zone",
    ),
    Endpoint("GET", f"{ENERGY}/telemetry_history", DONE, "`kind=charge`: Wall Connector sessions"),
    Endpoint("POST", f"{ENERGY}/backup", DONE, "`backup_reserve_percent` 0-100"),
    Endpoint("POST", f"{ENERGY}/operation", DONE, "self_consumption, autonomous, backup"),
    Endpoint("POST", f"{ENERGY}/storm_mode", DONE, "`enabled`"),
    Endpoint("POST", f"{ENERGY}/grid_import_export", DONE, "either member; null means unchanged"),
    Endpoint("POST", f"{ENERGY}/off_grid_vehicle_charging_reserve", DONE, "0-100"),
    Endpoint(
        "POST",
        f"{ENERGY}/time_of_use_settings",
        DONE,
        "`tariff_content_v2`, `tariff_content` or `schedule`, validated",
    ),
    Endpoint(
        "POST",
        f"{ENERGY}/command",
        "not planned yet",
        "undocumented gateway gRPC pass-through (reference §4.5)",
    ),
    Endpoint(
        "GET",
        "/api/1/dx/charging/history",
        "not planned yet",
        "Supercharger billing history; no simulated Supercharger billing exists",
    ),
)

DECISIONS: tuple[tuple[str, str], ...] = (
    (
        "A config JWS that does not verify",
        "400 `invalid_request` naming the problem (signature, `iss`, `aud`, no registered "
        "key), not 401: client libraries read a 401 as an expired or invalid access token.",
    ),
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
        "(unknown client or wrong secret), `invalid_auth_code` (unknown, expired or used code, "
        "or a PKCE verifier that does not match), `invalid_redirect_url`, 401 `login_required` "
        "(expired, revoked or reused refresh token, consent revoked, password reset), 403 "
        "`invalid_scope`; always `Cache-Control: no-store`.",
    ),
    (
        "Authorize errors",
        "An unknown or unapproved client, or a `redirect_uri` not exactly registered, gets a "
        "400 page and is never redirected. Other mistakes redirect back with `error`, "
        "`error_description` and `state` (`unsupported_response_type`, `invalid_scope`, "
        "`invalid_request`); a missing `state` redirects with `invalid_request` and no state. "
        "The RFC 9207 `iss` parameter is not added, for client compatibility.",
    ),
    (
        "Consent prompts",
        "A grant that already covers every requested scope issues the code without the page, "
        "unless `prompt=consent`. `prompt=login` (in Tesla's example URL) sends the customer to "
        "the sign-in page, even when signed in, and continues the request only after a sign-in "
        "newer than it (OpenID Connect; Tesla's page asks for the password too); the session "
        "the browser held is not ended, so a link cannot sign anyone out. `prompt=none` never "
        "shows a page (`login_required` / `consent_required`). `prompt_missing_scopes=true` "
        "offers only scopes not yet granted; `require_requested_scopes=true` is all or nothing; "
        "`openid` and `offline_access` cannot be unticked; no scope left means `access_denied`.",
    ),
    (
        "PKCE and codes",
        "Only `S256`; a challenge without a method is refused (the RFC default is `plain`); "
        "public apps must send one; a verifier without a challenge is refused. Codes are "
        "`NA_…`, live 10 minutes and work once: a second use revokes the refresh tokens of the "
        "first (reason `code_reuse`); a failed attempt does not use the code up. `audience` "
        "is optional on the code exchange (tescmd does not send it).",
    ),
    (
        "Third-party tokens",
        "A token's scopes are intersected with the owner's current consent on every request "
        "(403 `Unauthorized missing scopes` after narrowing); no consent: 401; a vehicle or "
        "site outside the consent: 404 like an unknown one, and absent from lists. A "
        "confidential app not yet registered gets 412 `Account <client_id> must be registered "
        "in the current region <base URL>…`; public PKCE-only apps cannot get the partner "
        "token registration needs and are exempt. Partner tokens on user or vehicle endpoints: "
        "403 `Unauthorized partner token`.",
    ),
    (
        "Partner registration",
        "The domain must be lower-case without a scheme (400 `Invalid domain: …`, Tesla's "
        "wording), equal the app's domain or share the root domain of an allowed origin (412 "
        "`Root domain … must match the root domain of an allowed origin`), and not belong to "
        "another app (422 `Validation failed: Domain has already been taken`). The key is "
        "fetched from the .well-known path (4 KB, same-host redirects only); if that fails the "
        "key uploaded in the portal is used, else 400 `Public key download failed for <url>`. "
        "Registering again answers 200 with the same shape; `ca` is null, `enterprise_tier` "
        '`free`. "Root domain" is the last two labels, three under a short list of suffixes '
        "such as `co.uk` (no full Public Suffix List).",
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
        "Energy calendar periods",
        "`calendar_history` buckets are local to `time_zone` (default: the site's): `day` is one "
        "entry for the day of `end_date`, `week` the 7 days ending that day, `month` each day of "
        "its month up to it, `year` each month of its year, `lifetime` each year since "
        "installation. With `start_date`, buckets of that size run from the one holding it. "
        "Timestamps are local midnights with their offset; energies are whole Wh and add up "
        "exactly across any bucket boundary. `end_date` defaults to now.",
    ),
    (
        "Energy writes",
        '`{"response": {"code": 201, "message": "Updated"}}` for every write, '
        "`grid_import_export` included (one Tesla example shows 204). A bad value is 400 "
        "`invalid_field` naming the member; a missing one 400 `invalid_request`; battery "
        "settings (time-of-use included) on a solar-only site are 400. An offline site "
        "answers 408 `device unavailable: energy site is offline or not responding`.",
    ),
    (
        "Energy sites and consent",
        "A third-party app's token reaches a site only if the owner's consent names it "
        "(`energy_site:<id>`); otherwise the site is absent from `products` and 404.",
    ),
    (
        "`site_status`",
        "Served (owner API, absent from Fleet API docs) because teslajsonpy aborts without it.",
    ),
    (
        "`telemetry_history kind=charge`",
        "One entry per Wall Connector session (consecutive 5-minute intervals with a car "
        "drawing power); without dates, the last 30 days.",
    ),
    (
        "Drivers",
        "A driver who redeemed an invitation sees and commands the car "
        "(`access_type: DRIVER`); invitations and the driver list stay owner-only (404).",
    ),
    (
        "Rate limits",
        "Per app (the token's `client_id`), per device and per pricing category, in a moving "
        "window: data 60/minute, commands 30/minute, wakes 3/minute by default (reference §7, "
        "configurable); free operations are never limited. A VIN and its Fleet id share one "
        "budget. Every limited request counts, whatever its outcome (a 408 or a missing scope "
        "too), except one without a valid token, with a partner token or naming a vehicle the "
        "caller cannot reach: it keeps its 401/403/404 and counts nothing. A refused request "
        "gets 429 in Tesla's "
        'envelope (`"error": "rate limit exceeded"`, `error_description` `Retry in N seconds: '
        "…`) with `Retry-After`, `RateLimit-Limit`, `RateLimit-Remaining` (0) and "
        "`RateLimit-Reset` (seconds until a request is admitted again, as Tesla sent it in "
        "2024). Served responses carry no `RateLimit-*` headers (Tesla sent them only on 429). "
        "Energy-site budgets are kept per site and per calling account, so a request for a "
        "site the caller cannot reach spends only the caller's own budget.",
    ),
    (
        "Token endpoint rate limit",
        "20 requests a second per `client_id` of the form (per client address without one; "
        "≈ reference §7, unconfirmed); beyond it 429 with the same headers and an RFC 6749 "
        'body `{"error": "rate_limited", "error_description": …}`.',
    ),
    (
        "Kafka sink layout",
        "As fleet-telemetry's Kafka dispatcher (reference §9.7): topic `<namespace>_<topic>`, "
        "key the VIN, value the protobuf payload or Flotta's JSON record, headers `vin`, `txid`, "
        "`txtype` and `receivedat` (ms). Its `timestamp`, `version` and "
        "`device_client_version` headers are not sent; Flotta adds `cursor`, `client_id`, "
        "`topic`, `created_at`, `signals` and `content-type`. The default namespace is "
        "`tesla_telemetry`. Tested against a fake broker: no Kafka broker runs here.",
    ),
    (
        "Billing policy",
        "Tesla bills every status below 500 (reference §8). Flotta's default `fair` policy bills "
        "only statuses below 400; `FLOTTA_BILLING__POLICY=tesla` reproduces Tesla's rule. Only "
        "third-party apps are billed, to the developer account that owns the app.",
    ),
    (
        "Billing headers",
        "Tesla sends none. Flotta adds `Flotta-Billing-Category`, `Flotta-Billing-Cost`, "
        "`Flotta-Billing-Currency`, `Flotta-Credit-Remaining` and (billed requests) "
        "`Flotta-Usage-Id` to every `/api/1/` response of a third-party token; clients ignore "
        "unknown headers.",
    ),
    (
        "Excessive-bill protection",
        "At the account's threshold (default: the monthly credit) every `/api/1/` request of its "
        'apps gets 403 `{"response": null, "error": "account disabled: EXCEEDED_LIMIT", '
        '"error_description": …}`, the error observed from Tesla (vehicle-command #403), until '
        "the threshold is raised (needs a payment method) or a new UTC month begins. The token "
        "endpoint keeps working.",
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
