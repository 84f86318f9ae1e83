"""Sink settings across kinds: a URL that cannot be parsed is refused when the sink is added;
the API never shows a secret, and a shown secret sent back in an edit keeps the stored one."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest

from flotta.adapters.sinks import (
    HIDDEN,
    SinkSettingsError,
    open_sink,
    restore_hidden,
    shown_settings,
    validate_sink_settings,
)
from flotta.telemetry.sinks_edit import merge_settings
from tests.telemetry.test_config import issue_certificate, pem


def test_passwords_keys_and_url_credentials_are_hidden() -> None:
    stored = {
        "password": "p", "client_key": "-----BEGIN PRIVATE KEY-----", "username": "app",
        "ca": "-----BEGIN CERTIFICATE-----", "timeout_s": 10.0,
    }  # fmt: skip
    assert shown_settings(stored) == {**stored, "password": HIDDEN, "client_key": HIDDEN}
    assert shown_settings({"url": "redis://user:pw@h:6379/0"}) == {
        "url": f"redis://user:{HIDDEN}@h:6379/0"
    }
    assert shown_settings({"url": "nats://token@h:4222"}) == {"url": f"nats://{HIDDEN}@h:4222"}
    for url in ("redis://h:6379/0", "redis://user@h", "https://hooks.example.com/t", "nats://h"):
        assert shown_settings({"url": url}) == {"url": url}
    assert shown_settings({"password": None}) == {"password": None}  # nothing to hide
    assert shown_settings({"url": "redis://:pw@[unclosed"}) == {"url": HIDDEN}  # unparsable


def test_a_shown_secret_sent_back_keeps_the_stored_one_and_a_new_one_replaces_it() -> None:
    stored = {"url": "nats://token@h:4222", "password": "p"}
    assert restore_hidden(stored, shown_settings(stored)) == stored
    unparsable = {"url": "redis://:pw@[unclosed"}
    assert restore_hidden(unparsable, shown_settings(unparsable)) == unparsable
    changed = {"url": "nats://other@h:4222", "password": "q"}
    assert restore_hidden(stored, changed) == changed
    # The shown form of another host is not this URL: it is taken as written...
    moved = {"url": f"nats://{HIDDEN}@elsewhere:4222"}
    assert restore_hidden(stored, moved) == moved


@pytest.mark.parametrize(
    ("kind", "stored", "sent", "refused"),
    [
        # ...and then refused, not stored as the token every delivery would send.
        ("nats", {"url": "nats://token@h:4222"}, {"url": f"nats://{HIDDEN}@elsewhere:4222"}, "url"),
        ("redis", {"url": "redis://:pw@h:6379/0"}, {"url": f"redis://:{HIDDEN}@h:6379/1"}, "url"),
        # A secret the sink never had has nothing to stand for.
        ("mqtt", {"host": "h"}, {"username": "app", "password": HIDDEN}, "password"),
        # Settings copied from another sink's listing (a new sink: nothing stored).
        ("mqtt", {}, {"host": "h", "username": "app", "password": HIDDEN}, "password"),
    ],
)
def test_a_shown_secret_that_stands_for_nothing_stored_is_refused(
    kind: str, stored: dict[str, str], sent: dict[str, str], refused: str
) -> None:
    with pytest.raises(SinkSettingsError) as error:
        validate_sink_settings(kind, merge_settings(stored, sent))
    [message] = (error.value.messages or {})[f"settings.{refused}"]
    assert "send the secret itself" in message


def test_hidden_text_outside_a_secret_is_not_refused() -> None:
    """Only a URL's password (a NATS URL's token) counts: the same characters in a path do not."""
    url = f"https://hooks.example.com/{HIDDEN}"
    assert validate_sink_settings("webhook", {"url": url})["url"] == url
    # Sent back as shown, the stored secret is kept and the edit is accepted.
    stored = {"url": "redis://:pw@h:6379/0"}
    kept = validate_sink_settings("redis", merge_settings(stored, shown_settings(stored)))
    assert kept["url"] == stored["url"]


@pytest.mark.parametrize(
    ("kind", "url"),
    [("redis", "redis://:pw@[unclosed"), ("redis", "redis://h:99999/0"),
     ("nats", "nats://[::1:4222"), ("webhook", "https://[bad/hook")],
)  # fmt: skip
def test_a_url_that_cannot_be_parsed_is_refused_when_the_sink_is_added(kind: str, url: str) -> None:
    with pytest.raises(SinkSettingsError) as refused:
        validate_sink_settings(kind, {"url": url})
    assert "cannot be parsed" in (refused.value.messages or {})["settings.url"][0]


@pytest.mark.parametrize(
    ("kind", "module", "settings"),
    [
        ("nats", "nats", {"url": "nats://127.0.0.1:4222"}),
        ("mqtt", "aiomqtt", {"host": "127.0.0.1"}),
        ("redis", "redis.asyncio", {"url": "redis://127.0.0.1:6379/0"}),
        ("kafka", "aiokafka", {"bootstrap_servers": "127.0.0.1:9092"}),
    ],
)
def test_a_kind_whose_library_is_missing_is_refused_when_the_sink_is_added(
    kind: str, module: str, settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server installed without an extra refuses its kind up front, naming the extra,
    instead of accepting a sink whose every delivery would fail."""
    assert validate_sink_settings(kind, settings)  # installed here (the dev extras)
    monkeypatch.setitem(sys.modules, module, None)  # `import` now fails, as if not installed
    monkeypatch.delitem(sys.modules, f"flotta.adapters.sink_{kind}")  # so it is imported again
    with pytest.raises(SinkSettingsError) as refused:
        validate_sink_settings(kind, settings)
    [message] = (refused.value.messages or {})["kind"]
    assert f"pip install 'flotta[{kind}]'" in message and module in message


@pytest.mark.parametrize(
    ("hostname", "said"),
    [
        ("127.0.0.1:6379/?", "must not include a path"),
        ("a:b@127.0.0.1", "is not a valid host name"),
        ("2606:4700:4700::1111%:x@127.0.0.1", "is not a valid host name"),
        ("wss://receiver.example.com", "must not include a scheme"),
    ],
)
def test_a_receiver_hostname_is_a_bare_host_as_in_a_config(hostname: str, said: str) -> None:
    # It becomes part of a wss:// URL: anything else there could name another host or port.
    settings = {"hostname": hostname, "ca": "-----BEGIN CERTIFICATE-----"}
    with pytest.raises(SinkSettingsError) as refused:
        validate_sink_settings("receiver", settings)
    assert said in refused.value.messages["settings.hostname"][0]


@pytest.mark.parametrize(
    ("host", "said"),
    [
        ("mqtt://127.0.0.1", "must not include a scheme: use '127.0.0.1'"),
        ("127.0.0.1:1883", "must not include a port"),
        ("broker.example.com/x", "must not include a path"),
    ],
)
def test_an_mqtt_host_is_a_bare_host(host: str, said: str) -> None:
    with pytest.raises(SinkSettingsError) as refused:
        validate_sink_settings("mqtt", {"host": host})
    assert said in refused.value.messages["settings.host"][0]
    # A broker's single-label name on a private network is a host too, underscores and all.
    for name in ("mosquitto", "mqtt_broker", "proj_mosquitto_1"):
        assert validate_sink_settings("mqtt", {"host": name})["host"] == name


@pytest.mark.parametrize(
    ("kind", "settings", "setting"),
    [
        ("redis", {"url": "redis://127.0.0.1", "maxlen": True}, "maxlen"),
        ("redis", {"url": "redis://127.0.0.1", "maxlen": "100"}, "maxlen"),
        ("webhook", {"url": "https://hooks.example.com", "timeout_s": True}, "timeout_s"),
        ("mqtt", {"host": "127.0.0.1", "tls": "yes"}, "tls"),
        ("mqtt", {"host": "127.0.0.1", "port": "1883"}, "port"),
        ("receiver", {"hostname": "r.example.com", "ca": 5}, "ca"),
    ],
)
def test_a_setting_of_the_wrong_json_type_is_refused_not_converted(
    kind: str, settings: dict[str, object], setting: str
) -> None:
    # Converted, `"maxlen": true` capped a Redis stream at one entry.
    with pytest.raises(SinkSettingsError) as refused:
        validate_sink_settings(kind, settings)
    assert f"settings.{setting}" in refused.value.messages


def test_json_numbers_are_taken_where_a_float_goes() -> None:
    assert (
        validate_sink_settings("webhook", {"url": "https://h.example.com", "timeout_s": 3})[
            "timeout_s"
        ]
        == 3.0
    )


def test_a_receiver_ca_gets_the_checks_a_config_ca_gets() -> None:
    now = datetime.now(UTC)
    expired, _ = issue_certificate(
        "Old CA", ca=True, not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)
    )
    leaf, _ = issue_certificate(
        "receiver.example.com", ca=False, not_before=now, not_after=now + timedelta(days=30)
    )
    for ca, said in (
        (pem(expired), "certificate (CN=Old CA) expired at "),
        (pem(leaf), "ca holds no CA certificate"),
    ):
        settings = {"hostname": "r.example.com", "ca": ca}
        with pytest.raises(SinkSettingsError) as refused:
            validate_sink_settings("receiver", settings)
        assert refused.value.messages["settings.ca"][0].startswith(said)
        # Only when added or edited: a stored sink whose CA has since expired still opens.
        assert open_sink("receiver", settings, "protobuf") is not None
