"""Problem collection and the scalar checks of a telemetry config: VINs, host, port, CA, expiry."""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from cryptography import x509

MISSING: Any = object()
"""Stands for a key absent from the input (distinct from an explicit JSON null)."""

# ISO 3779: 17 characters, upper case, never I, O or Q (they read as 1 and 0).
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class ConfigProblem:
    """One mistake: where it is (a JSON path such as `config.fields.Soc.interval_seconds`), why."""

    path: str
    message: str


class Problems(list[ConfigProblem]):
    """Collects problems in the order they are found."""

    def add(self, path: str, message: str) -> None:
        self.append(ConfigProblem(path, message))


def check_vins(raw: object, problems: Problems, *, max_vins: int) -> tuple[str, ...] | None:
    """1 to `max_vins` distinct VINs."""
    if raw is MISSING:
        problems.add("vins", "vins is required: the list of VINs to configure")
        return None
    if not isinstance(raw, list):
        problems.add("vins", f"vins must be a list of VINs, not {kind(raw)}")
        return None
    count = len(problems)
    if not raw:
        problems.add("vins", "vins must name at least one vehicle")
    if len(raw) > max_vins:
        problems.add("vins", f"vins lists {len(raw)} vehicles; send at most {max_vins}")
    seen: dict[str, int] = {}
    for index, vin in enumerate(raw):
        at = f"vins[{index}]"
        if not isinstance(vin, str):
            problems.add(at, f"a VIN must be a string, not {kind(vin)}")
        elif not _VIN.fullmatch(vin):
            problems.add(at, _vin_problem(vin))
        elif vin in seen:
            problems.add(at, f"duplicate VIN '{vin}' (already at vins[{seen[vin]}])")
        else:
            seen[vin] = index
    return tuple(seen) if len(problems) == count else None


def _vin_problem(vin: str) -> str:
    if _VIN.fullmatch(vin.upper()):
        return f"VINs are upper case: write '{vin.upper()}', not {show(vin)}"
    if len(vin) != 17:
        return f"{show(vin)} is not a VIN: it has {len(vin)} characters, a VIN has 17"
    return f"{show(vin)} is not a VIN: only 0-9 and A-Z except I, O and Q are allowed"


def check_hostname(raw: object, path: str, problems: Problems) -> str | None:
    """A bare FQDN or IP address the car can connect to."""
    if raw is MISSING:
        problems.add(path, "hostname is required: the host name or IP address of your server")
        return None
    if not isinstance(raw, str):
        problems.add(path, f"hostname must be a string, not {kind(raw)}")
        return None
    problem = hostname_problem(raw)
    if problem is not None:
        problems.add(path, problem)
        return None
    return raw


def hostname_problem(text: str) -> str | None:
    """Why `text` is not a bare FQDN or IP address, or None."""
    if "://" in text:
        host = text.split("://", 1)[1].split("/", 1)[0]
        return f"hostname must not include a scheme: use {show(host)}, not {show(text)}"
    if "/" in text:
        return f"hostname must not include a path: use {show(text.split('/', 1)[0])}"
    if text.startswith("[") and text.endswith("]"):
        return f"write an IPv6 hostname without brackets: {show(text[1:-1])}"
    if _is_ip(text):
        return None
    host, colon, port = text.rpartition(":")
    if colon and port.isdigit() and ":" not in host:
        return f"hostname must not include a port: set hostname to {show(host)} and port to {port}"
    if not text.isascii():
        return f"hostname must be ASCII: use the IDNA ('xn--') form of {show(text)}"
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    if len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return (
            f"{show(text)} is not a valid host name: dot-separated labels of 1-63 letters, "
            "digits or hyphens (no hyphen at either end), 253 characters at most"
        )
    if labels[-1].isdigit():
        return f"{show(text)} is not a valid IPv4 address"
    if len(labels) < 2 and text != "localhost":
        return f"{show(text)} is not a fully qualified domain name (like 'telemetry.example.com')"
    return None


def _is_ip(text: str) -> bool:
    if "%" in text:  # an IPv6 scope: a car cannot use one, and it may hide a URL's userinfo
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_port(raw: object, path: str, problems: Problems) -> int | None:
    """A TCP port, 1-65535."""
    if not is_int(raw):
        problems.add(path, f"port must be an integer, not {kind(raw)}")
        return None
    if not 1 <= raw <= 65_535:
        problems.add(path, f"port {num(raw)} is out of range: use 1-65535 (the default is 443)")
        return None
    return raw


def check_ca(
    raw: object,
    path: str,
    problems: Problems,
    *,
    now: datetime,
    max_chars: int,
) -> str | None:
    """PEM text holding X.509 certificates, each valid at `now`, at least one of them a CA.

    tescmd sends the server's own certificate along with its chain (what `tailscale cert`
    writes), and a car ignores a non-CA entry in its trust pool: accepted, as Tesla does. A
    bundle without any CA cannot verify anything, so it is refused.
    """
    if raw is MISSING:
        problems.add(path, "ca is required: the PEM chain that issued your server's certificate")
        return None
    if not isinstance(raw, str):
        problems.add(path, f"ca must be a PEM string, not {kind(raw)}")
        return None
    count = len(problems)
    if len(raw) > max_chars:
        problems.add(path, f"ca is {len(raw)} characters long; at most {max_chars}")
    elif "PRIVATE KEY" in raw:
        problems.add(
            path, "ca contains a private key: send only certificates, and replace that key"
        )
    elif not raw.isascii():
        problems.add(path, "ca must be ASCII PEM text")
    elif "-----BEGIN CERTIFICATE-----" not in raw:
        problems.add(path, "ca holds no '-----BEGIN CERTIFICATE-----' block")
    else:
        try:
            certificates = x509.load_pem_x509_certificates(raw.encode("ascii"))
        except ValueError:
            problems.add(path, "ca has a certificate block that is not a valid X.509 certificate")
        else:
            for index, certificate in enumerate(certificates):
                _check_certificate(certificate, f"{path}[{index}]", problems, now=now)
            if certificates and not any(_is_ca_or_false(c) for c in certificates):
                problems.add(
                    path,
                    "ca holds no CA certificate (basicConstraints CA:TRUE): send the chain that "
                    "issued your server's certificate, not only the server certificate itself",
                )
    return raw if len(problems) == count else None


def _is_ca_or_false(certificate: x509.Certificate) -> bool:
    try:
        return _is_ca(certificate)
    except ValueError:
        return False


def _check_certificate(
    certificate: x509.Certificate,
    path: str,
    problems: Problems,
    *,
    now: datetime,
) -> None:
    try:
        subject = certificate.subject.rfc4514_string() or "empty subject"
        _is_ca(certificate)  # a malformed extension raises here, reported below
    except ValueError:
        problems.add(path, "this certificate has a malformed subject or extensions")
        return
    if certificate.not_valid_after_utc <= now:
        problems.add(
            path, f"certificate ({subject}) expired at {iso(certificate.not_valid_after_utc)}"
        )
    elif certificate.not_valid_before_utc > now:
        starts = iso(certificate.not_valid_before_utc)
        problems.add(path, f"certificate ({subject}) is not valid until {starts}")


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return extension.value.ca


def check_exp(
    raw: object, path: str, problems: Problems, *, now: datetime, max_ahead_s: int
) -> int | None:
    """An optional Unix time in seconds, after `now` and at most `max_ahead_s` later."""
    if raw is None:
        return None
    if not is_int(raw):
        problems.add(path, f"exp must be an integer Unix time in seconds, not {kind(raw)}")
        return None
    now_s = int(now.timestamp())
    latest = now_s + max_ahead_s
    if raw <= now_s:
        problems.add(path, f"exp {num(raw)} is not in the future (now is {now_s}, {iso(now)})")
    elif raw > latest:
        hint = " (it looks like milliseconds; send seconds)" if raw > 10**12 else ""
        latest_at = iso(now + timedelta(seconds=max_ahead_s))
        problems.add(path, f"exp {num(raw)} is too far ahead: at most {latest} ({latest_at}){hint}")
    else:
        return raw
    return None


def reject_unknown_keys(
    raw: dict[Any, Any], allowed: Collection[str], parent: str, what: str, problems: Problems
) -> None:
    """Name every key of `raw` (at path `parent`) outside `allowed`, suggesting a close one."""
    for key in raw:
        if key not in allowed:
            problems.add(key_path(parent, str(key)), unknown(what, str(key), allowed))


def key_path(parent: str, key: str) -> str:
    """`config.fields.Soc`, or `config.fields["odd key"]` when the key is not a plain name."""
    if not _PLAIN_KEY.fullmatch(key):
        return f"{parent}[{json.dumps(key)}]"
    return f"{parent}.{key}" if parent else key


def unknown(what: str, name: str, allowed: Collection[str]) -> str:
    """`unknown field 'VehicleSpeeed'; did you mean 'VehicleSpeed'?`, or the allowed values."""
    folded = {option.casefold(): option for option in allowed}
    guess = folded.get(name.casefold())
    if guess is None:
        close = difflib.get_close_matches(name, list(allowed), n=1)
        guess = close[0] if close else None
    if guess is not None:
        return f"unknown {what} {show(name)}; did you mean '{guess}'?"
    if len(allowed) <= 10:
        return f"unknown {what} {show(name)}; allowed: {', '.join(sorted(allowed))}"
    return f"unknown {what} {show(name)}; see the Field enum in vehicle_data.proto"


def is_int(value: object) -> TypeGuard[int]:
    """JSON integers only: Python's bool is an int, a JSON boolean is not."""
    return isinstance(value, int) and not isinstance(value, bool)


def kind(value: object) -> str:
    """The JSON type of `value`, with a short rendering of scalars, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {num(value)}"
    if isinstance(value, str):
        return f"string {show(value)}"
    return "an array" if isinstance(value, list) else "an object"


def num(value: int | float) -> str:
    """A number for a message, bounded in length (huge integers cannot even be printed)."""
    try:
        text = repr(value)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return "(a number too large to show)"
    return text if len(text) <= 24 else text[:21] + "..."


def show(value: str) -> str:
    """A quoted, length-bounded rendering of user input for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"


def iso(moment: datetime) -> str:
    """An aware datetime as `2025-01-01T00:00:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
