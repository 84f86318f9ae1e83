"""Refusals of the apps domain; the portal, the CLI and the Fleet API each render them."""

from __future__ import annotations

from datetime import datetime


class AppError(Exception):
    """A refusal with a message fit for the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotEligible(AppError):
    """The account may not apply yet (e-mail unverified or no MFA)."""


class InvalidApplication(AppError):
    """Some fields are wrong; `errors` names each one."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class AppNotFound(AppError):
    """No such application (or not one the caller may see)."""


class AlreadyReviewed(AppError):
    """Approve or reject on an application that was already decided."""

    def __init__(self, status: str, reviewed_at: datetime | None) -> None:
        when = f" on {reviewed_at:%Y-%m-%d %H:%M} UTC" if reviewed_at else ""
        super().__init__(f"This application was already {status}{when}; a review is final.")
        self.status = status


class ChangedSinceReview(AppError):
    """Approve or reject from a review page showing an older version of the application."""


class ReasonRequired(AppError):
    """Rejecting needs a reason the developer can act on."""


class NotEditable(AppError):
    """A rejected application is final: the developer submits a new one."""


class NotApproved(AppError):
    """Credentials exist only for approved applications."""


class PartnerRefused(AppError):
    """A partner-account refusal; `status` and `key` (the `error` member) follow Tesla's.

    Tesla puts whole sentences in `error`, so by default the message is the key; `hint` says
    what to do next and goes to `error_description`.
    """

    def __init__(
        self, message: str, *, status: int, key: str | None = None, hint: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.key = key or message
        self.hint = hint or (message if key else "")
