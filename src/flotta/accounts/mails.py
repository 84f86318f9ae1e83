"""The words of every account e-mail (plain text; links are absolute portal URLs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    body: str


def _greeting(name: str) -> str:
    return f"Hello {name}," if name else "Hello,"


def verify_address(name: str, email: str, link: str) -> Mail:
    return Mail(
        "Confirm your e-mail address for Flotta",
        f"{_greeting(name)}\n\n"
        f"Please confirm that {email} is your address by opening this link:\n\n"
        f"{link}\n\n"
        "The link works once and expires in 24 hours. If you did not create a Flotta "
        "account, ignore this message and nothing will happen.\n",
    )


def already_registered(portal_url: str) -> Mail:
    return Mail(
        "Someone tried to create a Flotta account with your address",
        "Hello,\n\n"
        "Someone (perhaps you) tried to create a Flotta account with this address, but an "
        "account for it already exists, so nothing was changed.\n\n"
        f"If it was you, sign in at {portal_url}/login\n"
        f"or choose a new password at {portal_url}/forgot\n\n"
        "If it was not you, you can ignore this message.\n",
    )


def reset_password(name: str, link: str) -> Mail:
    return Mail(
        "Reset your Flotta password",
        f"{_greeting(name)}\n\n"
        "Someone (perhaps you) asked to reset the password of your Flotta account. "
        "To choose a new password, open this link:\n\n"
        f"{link}\n\n"
        "The link works once and expires in 1 hour. If you did not ask for it, ignore this "
        "message: your password stays as it is.\n",
    )


def password_changed(name: str, portal_url: str) -> Mail:
    return Mail(
        "Your Flotta password was changed",
        f"{_greeting(name)}\n\n"
        "The password of your Flotta account was just changed. You were signed out "
        "everywhere, and apps you connected must ask you to sign in again.\n\n"
        "If you did not do this, reset your password at once:\n"
        f"{portal_url}/forgot\n",
    )
