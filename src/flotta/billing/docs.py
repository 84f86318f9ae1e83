"""docs/billing.md, generated from the code (`python -m flotta.billing.docs > docs/billing.md`).

A test compares the file with `render()`, so prices, rules and categories cannot drift.
"""

from __future__ import annotations

from flotta.billing.categories import category_for, source_for
from flotta.billing.estimator import DEFAULT_DAYS, NOTES, ROUNDING
from flotta.billing.prices import CATEGORY_ORDER, UNIT_NAMES, PriceBook
from flotta.settings import BillingSettings

VARIABLES = {
    "streaming": "FLOTTA_BILLING__STREAMING_PER_CURRENCY_UNIT",
    "commands": "FLOTTA_BILLING__COMMANDS_PER_CURRENCY_UNIT",
    "data": "FLOTTA_BILLING__DATA_PER_CURRENCY_UNIT",
    "wakes": "FLOTTA_BILLING__WAKES_PER_CURRENCY_UNIT",
}

MONEY = [
    "Money is exact. A price is *N units per 1 currency unit*, so one signal costs "
    "1/150,000 of a euro (0.00000666…), which no decimal scale holds exactly: neither "
    "`Decimal` nor integer micro-units. Quantities are whole numbers; a cost is quantity ÷ "
    "units-per-currency-unit as an exact fraction (`fractions.Fraction`, integers only, "
    "never a float), and costs add up unrounded.",
    "Rounding happens once, on a total shown to a person (an estimate's or invoice's "
    "subtotal, credit applied and total): to 0.01, half up (`ROUND_HALF_UP`: 1.211 → 1.21, "
    "0.005 → 0.01), as the reference's \"1,211 commands → $1.21\". An estimate's category "
    "costs are shown rounded for reading, but totals are computed from the exact costs, never "
    "from the rounded lines, so shown lines may differ from the shown subtotal by a cent. An "
    "invoice's line items show their exact amounts. The usage page (a running account, not a "
    "bill) shows its amounts cut, never rounded up, to 6 decimals, like the "
    "`Flotta-Credit-Remaining` header.",
    "Exact amounts travel as text: a decimal when the amount has a finite decimal expansion "
    '(`"1.211"`), otherwise the reduced fraction (`"1/150000"`). Python\'s '
    "`fractions.Fraction(text)` reads both back unchanged.",
    "The monthly credit is applied once per account and month, and never exceeds the "
    "subtotal, so a total is never negative.",
]

POLICIES = [
    "`fair` (default): only what the platform served is billed, a status below 400. A request "
    "it refused is free: 400 (invalid), 401/403/404/412, 408 (asleep), 429 (throttled) and 5xx.",
    "`tesla`: Tesla's rule (reference §8), every response with a status below 500 is billed, "
    "refusals included; 5xx is free.",
    "The policy is a setting (`FLOTTA_BILLING__POLICY`). Only a third-party app's token is "
    "billed, to the developer account that owns the app; first-party tokens (`flotta token`, "
    "the owner app) and requests without a valid token are not metered. Authentication "
    "(`/oauth2/v3/*`) and Flotta's own `/flotta/v1/*` are never billed.",
]

HEADERS_INTRO = (
    "Every `/api/1/` response to a third-party app's token says how it was billed. A request "
    "that no paying account can be found for carries only the category."
)

LEDGER = [
    "Each billed request is one usage event (account, app, device, category, quantity, status, "
    "time, idempotency key). Its time is the moment the request was admitted, so it is billed "
    "to the month whose threshold admitted it. Its response leaves only after the event is in "
    "the local usage "
    "journal (`<data dir>/usage-journal/`, which outlives a crash of the process); a writer "
    "task then commits everything journaled since its last commit in one transaction, about "
    "once a second (group commit), and deletes that part of the journal. If the disk refuses "
    "the journal (full), the response is served all the same and the event waits in memory "
    "for that commit, with an error logged: the request has already been carried out, so "
    "failing it would only hide what was done; only a crash before the commit loses it.",
    "Events and their per-day totals (per account, app, device and category, UTC days) are "
    "written in the same transaction, so the two never disagree; a batch written again after a "
    "commit of unknown outcome skips the keys already there, so nothing is counted twice.",
    "A crash (even SIGKILL) loses no usage a client saw served: its Flotta-Usage-Id is in the "
    "ledger. Requests in flight at the crash whose response never arrived may be in the ledger "
    "or not, each at most once. A clean stop commits what is queued. The next process to "
    "start on the data dir replays what a stopped one left, the same pid included (each "
    "process's journal has its own name and lock file); processes sharing a data dir must "
    "share a host, as the lock is a local `flock`.",
    "If the database refuses a commit, the events stay queued and are retried; the response "
    "still goes out (the endpoint already acted).",
    "Each process keeps its accounts' month totals in memory, refreshed from the database every "
    "2 s: with several API processes, headers and the threshold see other processes' usage "
    "within that time. The ledger itself is exact.",
]

PROTECTION = [
    "Each account has a billing threshold, by default the monthly credit "
    "(`FLOTTA_BILLING__THRESHOLD` changes the default). It can be raised in the portal "
    "(Billing → Settings) only once a (simulated) payment method is on file.",
    "At 80 % of the threshold the developer gets one e-mail per month.",
    "When the month's usage reaches the threshold, every `/api/1/` request of the account's "
    "apps gets `403` with error `account disabled: EXCEEDED_LIMIT` (Tesla's observed error) "
    "until the threshold is raised or a new month begins (UTC).",
    "A per-app monthly budget is optional and only warns: one e-mail, and the header "
    "`Flotta-Budget-Warning` on that app's responses while it is over.",
    "`flotta demo` gives its developer a simulated card and a threshold of 100.00, so the "
    "sandbox is not disabled after the credit's 5,000 data requests.",
]

INVOICES = [
    "The cycle runs from 00:00 UTC on the 1st of the month.",
    "Line items per category and app: quantity, price and the exact amount; then the subtotal, "
    "the credit applied (at most the subtotal, once) and the total, each rounded once to 0.01 "
    "from the exact amounts (the page shows an exact subtotal beside its rounding).",
    "The current month is a live draft in the portal (Billing → Invoices). "
    "`flotta billing close --month YYYY-MM` writes the invoices of a month that is over; "
    "closing it again finds them and changes nothing. It is accepted from 00:05 UTC on the 1st "
    "of the next month: a request admitted before midnight is billed to the month it was "
    "admitted in, and a command may still be running then. A process that crashed before the "
    "month ended replays its usage journal when the next one starts on its data dir: close "
    "after that.",
]


def _price_rows(book: PriceBook) -> list[str]:
    rows = [
        f"| Category | Unit | Units per 1 {book.currency} | Setting |",
        "|---|---|---|---|",
    ]
    for category in CATEGORY_ORDER:
        units = book.units_per_currency_unit[category]
        rows.append(
            f"| {category.value} | one {UNIT_NAMES[category]} | {units:,} | "
            f"`{VARIABLES[category.value]}` |"
        )
    return rows


def _operation_rows() -> list[str]:
    from flotta.openapi import openapi_document

    rows = ["| Method | Path | Category | Decided by |", "|---|---|---|---|"]
    operations = sorted(
        (path, method.upper())
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method.upper() != "HEAD"
    )
    for path, method in operations:
        category = category_for(method, path)
        name = category.value if category is not None else "free"
        rows.append(f"| {method} | `{path}` | {name} | {source_for(method, path)} |")
    return rows


ESTIMATOR = (
    "`POST /flotta/v1/billing/estimate` (no token), `flotta billing estimate` and the portal "
    "page `/portal/billing/estimate` share one service. Inputs: vehicles; streamed fields "
    "(a name of Tesla's telemetry `Field` enum, `interval_seconds` ≥ 1, the share of the "
    "day it is active, from 0 to 1, as a decimal or a fraction such as `1/24`); commands, data "
    f"requests and wakes per vehicle per day; {DEFAULT_DAYS} days, or `days`, or the real "
    "length of `month=YYYY-MM`."
)
CATEGORIES = (
    "From `flotta.billing.categories`. *Tesla*: documented by Tesla (every `command/*` is "
    "`commands`, `vehicle_data` is `data`, `wake_up` is `wakes`, authentication is free). "
    "*Flotta*: Flotta's choice where Tesla publishes none (reads of one device are `data`, "
    "writes are `commands`, account-level lists and settings are free). Streamed telemetry "
    "signals are `streaming`."
)


def _price_book_section() -> list[str]:
    defaults = BillingSettings()
    book = PriceBook.from_settings(defaults)
    return [
        "## Price book (defaults)",
        "",
        *_price_rows(book),
        "",
        f"- Currency: `{defaults.currency}` (`FLOTTA_BILLING__CURRENCY`).",
        f"- Monthly credit per account: {defaults.monthly_credit} "
        "(`FLOTTA_BILLING__MONTHLY_CREDIT`, a decimal string with at most 2 places).",
        "- Billing threshold (excessive-bill protection): equal to the monthly credit unless "
        "`FLOTTA_BILLING__THRESHOLD` is set.",
        f"- Billing policy: `{defaults.policy}` (`FLOTTA_BILLING__POLICY`).",
        "",
    ]


def _headers_section() -> list[str]:
    from flotta.billing.middleware import BUDGET_WARNING, HEADERS

    rows = ["| Header | Meaning |", "|---|---|"]
    rows += [f"| `{name}` | {meaning} |" for name, meaning in HEADERS.items()]
    rows.append(
        f"| `{BUDGET_WARNING.decode().title()}` | Present while the app is past its budget |"
    )
    example = (
        "For example, a `vehicle_data` answered 200 with the default price book: "
        "`Flotta-Billing-Category: data`, `Flotta-Billing-Cost: 0.002`, "
        "`Flotta-Billing-Currency: EUR`, `Flotta-Credit-Remaining: 9.998000`."
    )
    return ["## Response headers", "", HEADERS_INTRO, "", *rows, "", example, ""]


def _section(title: str, intro: str, items: list[str] | tuple[str, ...]) -> list[str]:
    return [f"## {title}", "", *([intro, ""] if intro else []), *[f"- {i}" for i in items], ""]


def render() -> str:
    """The whole of docs/billing.md."""
    lines = [
        "# Billing",
        "",
        "Generated by `python -m flotta.billing.docs > docs/billing.md`; a test keeps it current.",
        "Usage is priced per category (reference §8); the defaults are the seed's, in "
        f"{BillingSettings().currency}.",
        "",
        *_price_book_section(),
        *_section("Money and rounding", "", MONEY),
        *_section("Billing policies", "", POLICIES),
        *_headers_section(),
        *_section("The usage ledger", "", LEDGER),
        *_section("Excessive-bill protection", "", PROTECTION),
        *_section("Invoices", "", INVOICES),
        *_section("Spend estimator", ESTIMATOR, (ROUNDING, *NOTES)),
        "## Category of every operation",
        "",
        CATEGORIES,
        "",
        *_operation_rows(),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
