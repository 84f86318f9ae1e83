"""`flotta billing estimate`: a table or the API's JSON, and errors naming the option."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _flotta(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOTTA_")}
    return subprocess.run(
        [sys.executable, "-m", "flotta.cli", "billing", "estimate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "COLUMNS": "120", **(env or {})},
    )


SEED = [
    "--vehicles", "2",
    "--field", "Location:10:1/24", "--field", "VehicleSpeed:10:1/24",
    "--field", "Soc:60:1/24", "--field", "Odometer:60:1/24", "--field", "Gear:60:1/24",
    "--commands-per-day", "100", "--wakes-per-day", "2",
]  # fmt: skip


def test_the_table_shows_each_category_and_the_total_after_credit() -> None:
    done = _flotta(*SEED)
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert "54,000" in rows["streaming"] and "0.36" in rows["streaming"]
    assert "6,000" in rows["commands"] and "6.00" in rows["commands"]
    assert "120" in rows["wakes"] and "2.40" in rows["wakes"]
    assert "8.76" in rows["subtotal"]
    assert "0.00" in rows["total after credit"]
    assert "upper bound" in done.stdout


def test_json_is_the_apis_response_and_month_sets_the_days() -> None:
    done = _flotta(
        "--vehicles", "2", "--field", "Location:60:0.1", "--field", "Soc:300:1",
        "--commands-per-day", "100", "--wakes-per-day", "2", "--data-per-day", "10",
        "--month", "2026-02", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["days"] == 28
    # Location 8,640 s a day ÷ 60 = 144, Soc 86,400 ÷ 300 = 288; x 2 cars x 28 days.
    assert [f["signals"] for f in result["fields"]] == [144 * 56, 288 * 56]
    assert {c["category"]: c["quantity"] for c in result["categories"]} == {
        "streaming": 24_192,
        "commands": 5_600,
        "data": 560,
        "wakes": 112,
    }
    # 0.16128 + 5.60 + 1.12 + 2.24 = 9.12128 → 9.12, within the credit.
    assert (result["subtotal"], result["total"]) == ("9.12", "0.00")


def test_the_price_book_comes_from_the_environment() -> None:
    env = {"FLOTTA_BILLING__WAKES_PER_CURRENCY_UNIT": "10", "FLOTTA_BILLING__MONTHLY_CREDIT": "0"}
    done = _flotta("--vehicles", "1", "--wakes-per-day", "1", "--days", "30", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == "3.00"


def test_bad_options_exit_2_naming_what_is_wrong() -> None:
    bad_field = _flotta("--vehicles", "2", "--field", "Locaton:60:0.1")
    assert bad_field.returncode == 2
    assert "--field 'Locaton:60:0.1'" in bad_field.stderr and "Location" in bad_field.stderr
    shape = _flotta("--vehicles", "2", "--field", "Location")
    assert shape.returncode == 2 and "Name:interval[:share]" in shape.stderr
    both = _flotta("--vehicles", "2", "--days", "3", "--month", "2026-02")
    assert both.returncode == 2 and "--month" in both.stderr and "not both" in both.stderr
    book = _flotta("--vehicles", "1", env={"FLOTTA_BILLING__MONTHLY_CREDIT": "1.001"})
    assert book.returncode == 2 and "monthly_credit" in book.stderr
