"""What account services raise when a request is refused for a reason the user can act on."""

from __future__ import annotations


class AccountRefused(Exception):
    """A refused request; `message` is shown to the user, `field` names the form input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
