"""Rate-limit settings: reference defaults, env overrides, and bad values refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flotta.settings import RateLimitSettings, Settings


def test_defaults_are_the_references() -> None:
    limits = RateLimitSettings()
    assert limits.enabled
    assert (limits.data, limits.commands, limits.wakes, limits.token) == (
        "60/minute",
        "30/minute",
        "3/minute",
        "20/second",
    )


def test_environment_overrides_each_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOTTA_RATELIMIT__DATA", "100 per hour")
    monkeypatch.setenv("FLOTTA_RATELIMIT__ENABLED", "false")
    settings = Settings(demo=True)
    assert settings.ratelimit.data == "100 per hour"
    assert not settings.ratelimit.enabled


@pytest.mark.parametrize("value", ["sixty a minute", "0/minute", "60/fortnight", ""])
def test_a_limit_that_cannot_be_read_is_refused_with_the_notation(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RateLimitSettings(commands=value)
    assert "<count>/<second|minute|hour|day>" in str(refused.value)
