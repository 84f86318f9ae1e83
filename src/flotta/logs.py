"""structlog configuration: one call, level from settings; nothing secret is ever logged."""

from __future__ import annotations

import logging
import re

import structlog

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(level: str) -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Plain tracebacks: with rich installed, structlog's default renders every frame's
            # local variables (a password, a token, a database URL) into the log, and took
            # seconds of CPU per logged exception, enough to stall a server whose database had
            # gone (each failed retry logged one) past its shutdown deadline.
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            ),
        ],
        cache_logger_on_first_use=False,
    )
    redact_access_log()


# Query parameters that carry one-time links, codes or secrets (portal links, OAuth).
SECRET_PARAMS = re.compile(
    r"(?P<name>\b(?:token|code|code_verifier|refresh_token|client_secret|access_token)=)[^&\s\"]+"
)


def redact(text: str) -> str:
    """`...?token=fev_abc` → `...?token=[redacted]`."""
    return SECRET_PARAMS.sub(r"\g<name>[redacted]", text)


class RedactSecrets(logging.Filter):
    """Access logs print request paths: strip the secret query values before they are written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_access_log() -> None:
    """Attach the filter to uvicorn's access logger (idempotent)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecrets) for f in access.filters):
        access.addFilter(RedactSecrets())
