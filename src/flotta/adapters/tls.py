"""TLS for the adapters that connect out (receivers, Kafka): whom to trust and what to present."""

from __future__ import annotations

import os
import ssl
import tempfile


def client_context(ca_pem: str | None, what: str) -> ssl.SSLContext:
    """A context that checks the server's certificate and hostname against `ca_pem` only, or
    against the system's CAs when there is none; ValueError naming `what` for a bad CA."""
    if ca_pem is not None and not ca_pem.isascii():  # `ssl` raises TypeError for these
        raise ValueError(f"the {what} CA must be ASCII PEM (no accented comment lines)")
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ValueError(f"the {what} CA is not a usable PEM certificate: {exc}") from exc


def load_client_cert(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """Present a PEM certificate (chain) and key; `ssl` only reads files, so they pass through
    a private one."""
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600: readable by us only
            handle.write(cert_pem.strip() + "\n" + key_pem.strip() + "\n")
        # A password, even empty: without one OpenSSL asks the terminal for an encrypted key's.
        context.load_cert_chain(path, password=b"")
    except ssl.SSLError as exc:
        raise ValueError(
            f"the client certificate or key is not usable (the key must not be encrypted): {exc}"
        ) from exc
    finally:
        os.unlink(path)
