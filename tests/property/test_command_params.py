"""Property tests: arbitrary JSON bodies only ever produce a command or a CommandError."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flotta.commands import (
    COMMAND_NAMES,
    CommandError,
    ParsedCommand,
    command_spec,
    describe_message,
    parse_command,
    parse_days_of_week,
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["80", " 21.5", "1e400", "nan", "All", "Weekdays", "mon,tue", "1234"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def command_and_body(draw: st.DrawFn) -> tuple[str, Any]:
    """Draw a command name and a body that mostly uses that command's parameter names."""
    name = draw(st.sampled_from(COMMAND_NAMES) | st.text(max_size=10))
    keys: list[str] = []
    if name in COMMAND_NAMES:
        for param in command_spec(name).params:
            keys.extend((param.name, *param.aliases))
    key_strategy = st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8)
    body = draw(st.none() | st.dictionaries(key_strategy, json_values, max_size=8) | json_values)
    return name, body


def check(name: str, body: Any) -> None:
    """Assert parse_command returns a command or raises a well-formed CommandError."""
    try:
        parsed = parse_command(name, body)
    except CommandError as err:
        assert err.status in (400, 422)
        assert err.key in ("invalid_command", "invalid_request", "invalid_field")
        assert err.message
        return
    assert isinstance(parsed, ParsedCommand)
    if parsed.message is not None:
        parsed.message.SerializeToString()


@settings(max_examples=600, deadline=None)
@given(command_and_body())
def test_arbitrary_bodies_only_raise_command_error(case: tuple[str, Any]) -> None:
    check(*case)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(COMMAND_NAMES), st.dictionaries(st.text(max_size=8), json_values))
def test_random_keys_only_raise_command_error(name: str, body: dict[str, Any]) -> None:
    check(name, body)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_days_of_week_only_raises_command_error(value: Any) -> None:
    try:
        mask = parse_days_of_week(value)
    except CommandError:
        return
    assert 1 <= mask <= 127


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=8), st.binary(max_size=64))
def test_describe_message_never_raises(domain: int, payload: bytes) -> None:
    result = describe_message(domain, payload)
    assert result is None or result in COMMAND_NAMES
