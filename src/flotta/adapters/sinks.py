"""Sink factory: validate a sink's settings by kind, and open the adapter that delivers to it.

NATS, MQTT, Redis and Kafka adapters are imported only when such a sink opens: their client
libraries are optional extras (`nats`, `mqtt`, `redis`, `kafka`). A sink of a kind whose library
this server lacks is refused when it is added, rather than failing every delivery.
"""

from __future__ import annotations

import base64
import importlib
import ipaddress
import re
import secrets
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flotta.adapters.sink_receiver import (
    ClientCertificates,
    ReceiverSink,
    ReceiverTarget,
)
from flotta.adapters.sink_webhook import WebhookSink
from flotta.adapters.tls import client_context, load_client_cert
from flotta.clock import Clock, SystemClock
from flotta.errors import InvalidRequest
from flotta.outbound import DestinationRefused, Outbound, url_destination
from flotta.ports.sinks import Sink, SinkError
from flotta.telemetry.checks import Problems, check_ca, hostname_problem
from flotta.telemetry.formats import FORMATS, SinkFormat
from flotta.telemetry.records import StreamRecord
from flotta.validation import validation_message

SinkKind = Literal["webhook", "nats", "mqtt", "redis", "kafka", "receiver"]
KINDS: tuple[SinkKind, ...] = ("webhook", "nats", "mqtt", "redis", "kafka", "receiver")

_NATS_TOKEN = r"[A-Za-z0-9_-]+"
_MQTT_LEVEL = r"[^/+#\x00]+"
_MAX_PEM = 100_000
# A broker's name as a private network's DNS may give it (`mqtt_broker`, `mosquitto`).
_BROKER_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,252})")
_KAFKA_BROKER = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}"


class SinkSettingsError(InvalidRequest):
    """Sink settings that cannot work; `messages` maps each setting to what is wrong."""

    def __init__(self, messages: dict[str, list[str]]) -> None:
        first = next(iter(messages.items()))
        super().__init__(f"invalid sink settings: {first[0]}: {first[1][0]}", messages=messages)


class _Settings(BaseModel):
    # Strict: JSON's own types only, so `"maxlen": true` or `"port": "1883"` is refused rather
    # than stored as 1 or 1883 (a number where a float goes is still taken).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("url", check_fields=False)
    @classmethod
    def _parsable(cls, value: str) -> str:
        """A URL the client libraries can parse (an unclosed `[` passes the patterns)."""
        try:
            urlsplit(value).port  # noqa: B018 - parsing the port is the check
        except ValueError as exc:
            raise ValueError(f"cannot be parsed as a URL: {exc}") from None
        return value


class WebhookSettings(_Settings):
    """POST target; the signing secret is the sink's `secret` (`whsec_…`)."""

    url: str = Field(pattern=r"^https?://[^\s/]+", max_length=2000)


class NatsSettings(_Settings):
    """JetStream server, stream (created if missing) and subject prefix."""

    url: str = Field(pattern=r"^(nats|tls)://\S+$")
    stream: str = Field(default="FLOTTA_TELEMETRY", pattern=rf"^{_NATS_TOKEN}$", max_length=64)
    subject_prefix: str = Field(
        default="telemetry", pattern=rf"^{_NATS_TOKEN}(\.{_NATS_TOKEN})*$", max_length=128
    )


class MqttSettings(_Settings):
    """Broker, credentials and the topic base of fleet-telemetry's layout."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: bool = False
    topic_base: str = Field(
        default="telemetry", pattern=rf"^{_MQTT_LEVEL}(/{_MQTT_LEVEL})*$", max_length=200
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        """A bare host name or address: `mqtt://…` or `host:1883` would be looked up as is. A
        broker may have a single-label name, with underscores (`mqtt_broker` on a private
        network), as outbound checks accept."""
        if (problem := hostname_problem(value)) is not None and not _BROKER_NAME.fullmatch(value):
            raise ValueError(problem)
        return value


class RedisSettings(_Settings):
    """Server, stream key prefix and the approximate length cap of each app's stream."""

    url: str = Field(pattern=r"^(redis|rediss)://\S+$")
    stream_prefix: str = Field(default="telemetry", min_length=1, max_length=100)
    maxlen: int = Field(default=100_000, ge=1, le=100_000_000)


class KafkaSettings(_Settings):
    """Brokers to bootstrap from, the topic namespace, and how to authenticate."""

    bootstrap_servers: str = Field(
        pattern=rf"^{_KAFKA_BROKER}(,{_KAFKA_BROKER})*$", max_length=2000
    )
    # Topics are `<namespace>_<topic>`; the longest, `_connectivity`, must fit Kafka's 249.
    namespace: str = Field(default="tesla_telemetry", pattern=r"^[A-Za-z0-9._-]+$", max_length=200)
    tls: bool = False
    # PEM: the CA to trust instead of the system's, and a client certificate (mutual TLS).
    ca: str | None = Field(default=None, max_length=_MAX_PEM)
    client_cert: str | None = Field(default=None, max_length=_MAX_PEM)
    client_key: str | None = Field(default=None, max_length=_MAX_PEM)
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = Field(default=None, max_length=255)
    password: str | None = Field(default=None, max_length=255)

    @field_validator("bootstrap_servers")
    @classmethod
    def _brokers(cls, value: str) -> str:
        """Each `host:port` must be one aiokafka can connect to, not fail on at delivery."""
        for broker in value.split(","):
            host, _, port = broker.rpartition(":")
            if not 1 <= int(port) <= 65535:
                raise ValueError(f"{broker}: the port must be 1-65535")
            if host.startswith("["):
                try:
                    ipaddress.IPv6Address(host[1:-1])
                except ValueError:
                    raise ValueError(f"{broker}: [{host[1:-1]}] is not an IPv6 address") from None
            elif len(host) > 253 or not all(0 < len(label) <= 63 for label in host.split(".")):
                raise ValueError(f"{broker}: not a valid host name")
        return value


class ReceiverSettings(_Settings):
    """A fleet-telemetry-compatible server: the config's hostname, port and CA, plus options."""

    hostname: str = Field(min_length=1, max_length=253)
    port: int = Field(default=443, ge=1, le=65535)
    ca: str
    client_cert: str | None = None
    client_key: str | None = None
    wait_for_ack: bool = True

    @field_validator("hostname")
    @classmethod
    def _host(cls, value: str) -> str:
        """A bare host name or address, as a config's: it becomes part of a wss:// URL."""
        if (problem := hostname_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("ca")
    @classmethod
    def _pem(cls, value: str) -> str:
        # Dates are checked when the sink is added or edited (validate_sink_settings), not
        # here: stored sinks are parsed again at every open, and one that worked must not stop.
        if "-----BEGIN CERTIFICATE-----" not in value:
            raise ValueError("must be a PEM certificate chain")
        return value


_MODELS: Mapping[str, type[_Settings]] = {
    "webhook": WebhookSettings,
    "nats": NatsSettings,
    "mqtt": MqttSettings,
    "redis": RedisSettings,
    "kafka": KafkaSettings,
    "receiver": ReceiverSettings,
}


def _parse(kind: str, settings: Mapping[str, Any]) -> _Settings:
    """The typed settings of a kind; SinkSettingsError naming every problem otherwise."""
    model = _MODELS.get(kind)
    if model is None:
        raise SinkSettingsError({"kind": [f"must be one of {', '.join(KINDS)}"]})
    try:
        return model.model_validate(dict(settings))
    except ValidationError as exc:
        messages: dict[str, list[str]] = {}
        for error in exc.errors():
            path = ".".join(str(part) for part in error["loc"]) or "settings"
            message = validation_message(error)
            if error["type"] == "string_pattern_mismatch":
                message = _PATTERN_HINTS.get(path, message)
            messages.setdefault(f"settings.{path}", []).append(message)
        raise SinkSettingsError(messages) from exc


_PATTERN_HINTS = {
    "url": "must be a URL with the scheme this sink speaks (http(s)://, nats:// or tls://, "
    "redis:// or rediss://)",
    "bootstrap_servers": "must be host:port or [IPv6]:port, or several separated by commas",
    "namespace": "must be letters, digits, '.', '_' or '-' (a Kafka topic name's characters)",
    "stream": "must be letters, digits, '_' or '-' (a JetStream stream name)",
    "subject_prefix": "must be dot-separated tokens of letters, digits, '_' or '-'",
    "topic_base": "must be '/'-separated MQTT topic levels without '+' or '#'",
}


# Kinds whose adapter (`flotta.adapters.sink_<kind>`) needs the optional extra of that name.
OPTIONAL_KINDS = ("nats", "mqtt", "redis", "kafka")


def _check_installed(kind: str) -> None:
    """SinkSettingsError when this server cannot load the adapter of `kind` (its client
    library, an optional extra, is missing)."""
    if kind not in OPTIONAL_KINDS:
        return
    try:
        importlib.import_module(f"flotta.adapters.sink_{kind}")
    except ImportError as exc:
        raise SinkSettingsError(
            {
                "kind": [
                    f"this server cannot deliver to {kind} sinks: {exc.name or exc} is not "
                    f"installed (its operator can add it with pip install 'flotta[{kind}]')"
                ]
            }
        ) from exc


def validate_sink_settings(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised settings (defaults filled in) for `kind`; SinkSettingsError when invalid,
    or when this server lacks the kind's client library."""
    parsed = _parse(kind, settings)
    _refuse_hidden(settings)
    _check_installed(kind)
    if isinstance(parsed, ReceiverSettings):
        # The checks a config's `ca` gets: an expired or leaf-only chain verifies nothing.
        problems = Problems()
        check_ca(parsed.ca, "ca", problems, now=datetime.now(UTC), max_chars=_MAX_PEM)
        if problems:
            raise SinkSettingsError({"settings.ca": [problems[0].message]})
        _checked_tls(parsed.ca, parsed.client_cert, parsed.client_key, "receiver")
    if isinstance(parsed, KafkaSettings):
        _check_kafka_credentials(parsed)
        kafka_tls(parsed)
    return parsed.model_dump()


# (the setting that names it, host, port)
Destination = tuple[str, str, int]


def sink_destinations(kind: str, settings: Mapping[str, Any]) -> list[Destination]:
    """Every host a sink connects to, with the setting that names it."""
    return _destinations(_parse(kind, settings))


def _destinations(parsed: _Settings) -> list[Destination]:
    if isinstance(parsed, WebhookSettings | NatsSettings | RedisSettings):
        return [("url", *url_destination(parsed.url))]
    if isinstance(parsed, MqttSettings):
        return [("host", parsed.host, parsed.port)]
    if isinstance(parsed, KafkaSettings):
        brokers = [broker.rpartition(":") for broker in parsed.bootstrap_servers.split(",")]
        return [("bootstrap_servers", host.strip("[]"), int(port)) for host, _, port in brokers]
    assert isinstance(parsed, ReceiverSettings)
    return [("hostname", parsed.hostname, parsed.port)]


async def check_sink_destinations(
    kind: str, settings: Mapping[str, Any], outbound: Outbound
) -> None:
    """SinkSettingsError, under the setting that names it, for a host this server must not
    connect to on a developer's behalf (flotta.outbound)."""
    for name, host, port in sink_destinations(kind, settings):
        try:
            await outbound.check(host, port)
        except DestinationRefused as exc:
            raise SinkSettingsError({f"settings.{name}": [str(exc)]}) from None


class GuardedSink:
    """A sink whose hosts are checked again before each delivery: a name accepted when the
    sink was added may resolve to a private address since. A refusal is a nack (SinkError),
    retried and dead-lettered like any other, and shown in the delivery log."""

    def __init__(
        self, inner: Sink, destinations: Sequence[tuple[str, int]], outbound: Outbound
    ) -> None:
        self.inner = inner
        self._destinations = tuple(destinations)
        self._outbound = outbound

    async def deliver(self, batch: Sequence[StreamRecord]) -> None:
        try:
            await self._outbound.check_all(self._destinations)
        except DestinationRefused as exc:
            raise SinkError(str(exc)) from None
        await self.inner.deliver(batch)

    async def close(self) -> None:
        await self.inner.close()


def kafka_tls(parsed: KafkaSettings) -> ssl.SSLContext | None:
    """The Kafka sink's TLS context (None without `tls`); SinkSettingsError naming the setting
    that cannot work."""
    if not parsed.tls:
        given = [name for name in ("ca", "client_cert", "client_key") if getattr(parsed, name)]
        if given:
            raise SinkSettingsError({f"settings.{name}": ["needs tls"] for name in given})
        return None
    return _checked_tls(parsed.ca, parsed.client_cert, parsed.client_key, "Kafka")


def _checked_tls(
    ca: str | None, client_cert: str | None, client_key: str | None, what: str
) -> ssl.SSLContext:
    """A client TLS context from a sink's PEM settings, loaded now rather than failing at the
    first delivery; SinkSettingsError naming the setting that cannot work."""
    if bool(client_cert) != bool(client_key):
        raise SinkSettingsError({"settings.client_key": ["client_cert and client_key go together"]})
    try:
        context = client_context(ca, what)
    except ValueError as exc:
        raise SinkSettingsError({"settings.ca": [str(exc)]}) from exc
    if client_cert:
        try:
            load_client_cert(context, client_cert, client_key or "")
        except ValueError as exc:
            raise SinkSettingsError({"settings.client_cert": [str(exc)]}) from exc
    return context


def _check_kafka_credentials(parsed: KafkaSettings) -> None:
    """SASL needs a mechanism, a username and a password together; none of them without it."""
    given = parsed.username is not None or parsed.password is not None
    if parsed.sasl_mechanism is None and given:
        raise SinkSettingsError({"settings.sasl_mechanism": ["a username or password needs one"]})
    if parsed.sasl_mechanism is not None:
        missing = [name for name in ("username", "password") if not getattr(parsed, name)]
        if missing:
            raise SinkSettingsError(
                {f"settings.{name}": [f"{parsed.sasl_mechanism} needs it"] for name in missing}
            )


def _receiver_target(
    parsed: ReceiverSettings, client_certs: ClientCertificates | None = None
) -> ReceiverTarget:
    """The receiver sink's connection parameters."""
    return ReceiverTarget(
        hostname=parsed.hostname,
        port=parsed.port,
        ca=parsed.ca,
        client_cert=parsed.client_cert,
        client_key=parsed.client_key,
        wait_for_ack=parsed.wait_for_ack,
        ack_timeout_s=parsed.timeout_s,
        connect_timeout_s=parsed.timeout_s,
        client_certs=client_certs,
    )


def open_sink(
    kind: str,
    settings: Mapping[str, Any],
    format: str,
    secret: str | None = None,
    *,
    clock: Clock | None = None,
    client_certs: ClientCertificates | None = None,
    outbound: Outbound | None = None,
) -> Sink:
    """The adapter for a sink row (kind, settings, format, secret); nothing connects yet.
    A receiver sink without `client_cert` presents `client_certs(vin)` per VIN, if given.
    With `outbound`, each delivery first checks the sink's hosts (GuardedSink)."""
    parsed = _parse(kind, settings)
    sink = _open_adapter(parsed, format, secret, clock, client_certs, outbound)
    if outbound is None:
        return sink
    hosts = [(host, port) for _, host, port in _destinations(parsed)]
    return GuardedSink(sink, hosts, outbound)


def _open_adapter(
    parsed: _Settings,
    format: str,
    secret: str | None,
    clock: Clock | None,
    client_certs: ClientCertificates | None,
    outbound: Outbound | None,
) -> Sink:
    """The sink's adapter; webhooks and receivers connect only to addresses `outbound`
    checked (the broker clients resolve names themselves: GuardedSink checks those), and a
    Kafka producer only to advertised brokers it allows."""
    if format not in FORMATS:
        raise SinkSettingsError({"format": [f"must be one of {', '.join(FORMATS)}"]})
    fmt: SinkFormat = "json" if format == "json" else "protobuf"
    clock = clock or SystemClock()
    if isinstance(parsed, WebhookSettings):
        if not secret:
            raise SinkSettingsError({"secret": ["a webhook sink needs a whsec_ signing secret"]})
        return WebhookSink(
            parsed.url, secret, fmt, clock=clock, timeout_s=parsed.timeout_s, outbound=outbound
        )
    if isinstance(parsed, NatsSettings):
        from flotta.adapters.sink_nats import NatsSink

        return NatsSink(
            parsed.url, parsed.stream, parsed.subject_prefix, fmt, timeout_s=parsed.timeout_s
        )
    if isinstance(parsed, MqttSettings):
        from flotta.adapters.sink_mqtt import MqttSink

        return MqttSink(
            parsed.host,
            parsed.port,
            parsed.topic_base,
            fmt,
            username=parsed.username,
            password=parsed.password,
            tls=parsed.tls,
            timeout_s=parsed.timeout_s,
        )
    if isinstance(parsed, RedisSettings):
        from flotta.adapters.sink_redis import RedisSink

        return RedisSink(
            parsed.url, parsed.stream_prefix, parsed.maxlen, fmt, timeout_s=parsed.timeout_s
        )
    if isinstance(parsed, KafkaSettings):
        return _kafka_sink(parsed, fmt, outbound)
    assert isinstance(parsed, ReceiverSettings)
    return ReceiverSink(_receiver_target(parsed, client_certs), outbound)


def _kafka_sink(parsed: KafkaSettings, fmt: SinkFormat, outbound: Outbound | None) -> Sink:
    from flotta.adapters.sink_kafka import KafkaSink, aiokafka_producer

    tls = kafka_tls(parsed)  # the rows were checked when stored: this builds the context
    return KafkaSink(
        parsed.bootstrap_servers,
        parsed.namespace,
        fmt,
        timeout_s=parsed.timeout_s,
        producer=lambda: aiokafka_producer(
            parsed.bootstrap_servers,
            tls=tls,
            sasl_mechanism=parsed.sasl_mechanism,
            username=parsed.username,
            password=parsed.password,
            timeout_s=parsed.timeout_s,
            outbound=outbound,
        ),
    )


# What the API shows instead of a secret setting; sent back unchanged in an edit, it keeps it.
HIDDEN = "********"
# Settings that are secrets by name (MQTT and Kafka passwords, client keys); the password of a
# URL's userinfo (Redis, NATS) is one too.
SECRET_SETTINGS = ("password", "client_key")


def shown_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A sink's settings as the API shows them: every secret replaced by HIDDEN."""
    shown = dict(settings)
    for name in SECRET_SETTINGS:
        if shown.get(name):
            shown[name] = HIDDEN
    if isinstance(url := shown.get("url"), str):
        shown["url"] = _url_shown(url)
    return shown


def restore_hidden(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """An edit's settings with each secret it sent back as shown replaced by the current one,
    so reading a sink's settings and sending them back changes no secret."""
    restored = dict(patch)
    for name in SECRET_SETTINGS:
        if restored.get(name) == HIDDEN and current.get(name):
            restored[name] = current[name]
    url = current.get("url")
    if isinstance(url, str) and restored.get("url") == _url_shown(url):
        restored["url"] = url
    return restored


def _refuse_hidden(settings: Mapping[str, Any]) -> None:
    """SinkSettingsError for a secret still in the form the API shows (HIDDEN): an edit's
    shown secret was put back already (`restore_hidden`), so this one stands for nothing it
    could restore (a URL changed elsewhere too, a secret the sink never had, settings copied
    from another sink), and stored it would be the secret every delivery sends."""
    hidden = [name for name in SECRET_SETTINGS if settings.get(name) == HIDDEN]
    url = settings.get("url")
    if isinstance(url, str) and HIDDEN in (_url_secret(url), url):
        hidden.append("url")
    if hidden:
        raise SinkSettingsError(
            {
                f"settings.{name}": [
                    f"holds {HIDDEN}, the form the API shows a secret in: send the secret "
                    "itself (the shown form keeps the stored secret only when sent back "
                    "unchanged)"
                ]
                for name in hidden
            }
        )


def _url_secret(url: str) -> str | None:
    """The secret a URL holds: its password, or its user where that is a token (NATS)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return parts.password
    return parts.username if parts.scheme in ("nats", "tls") else None


def _url_shown(url: str) -> str:
    """The URL with its secret (`_url_secret`) hidden; all of it when it cannot be parsed (it
    may still hold a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return HIDDEN
    host = parts.netloc.rpartition("@")[2]
    if parts.password:
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{HIDDEN}@{host}"))
    if parts.username and parts.scheme in ("nats", "tls"):
        return urlunsplit(parts._replace(netloc=f"{HIDDEN}@{host}"))
    return url


def new_webhook_secret() -> str:
    """A fresh Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
