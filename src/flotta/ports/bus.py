"""The message bus port: publish, subscribe and request-reply between processes.

Subjects are dot-separated tokens, as in NATS: in a subscription `*` matches one token and `>`
matches one or more trailing tokens. Handlers run concurrently, one task per message; a
handler that raises is logged and sends no reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


class BusError(Exception):
    """The bus could not deliver a message or is closed."""


class BusTimeout(BusError):
    """A request had responders, but none replied in time."""


class NoResponders(BusError):
    """A request went to a subject that nobody subscribes to."""


@dataclass(frozen=True, slots=True)
class BusMessage:
    subject: str
    data: bytes


# Returning bytes answers a request; for a published message the return value is dropped.
Handler = Callable[[BusMessage], Awaitable[bytes | None]]


class Subscription(Protocol):
    async def unsubscribe(self) -> None:
        """Stop delivering messages to this subscription's handler."""
        ...


class Bus(Protocol):
    """Fire-and-forget fan-out plus request-reply; the first reply wins."""

    async def publish(self, subject: str, data: bytes) -> None: ...

    async def subscribe(self, subject: str, handler: Handler) -> Subscription:
        """Deliver every later message on `subject` (wildcards allowed) to `handler`."""
        ...

    async def request(self, subject: str, data: bytes, timeout_s: float) -> bytes:
        """Send and wait for the first reply; BusTimeout or NoResponders otherwise."""
        ...

    async def close(self) -> None: ...


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` is one or more tokens."""
    wanted = pattern.split(".")
    tokens = subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">" and index == len(wanted) - 1:
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)
