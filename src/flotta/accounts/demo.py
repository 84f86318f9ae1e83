"""`flotta demo`'s people: a verified developer (an admin, MFA on) and the owner's password.

Both passwords and the developer's TOTP secret derive from the deployment's secret key, so they
survive restarts and differ between deployments. `demo.json` carries them, like its tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.accounts.passwords import Passwords
from flotta.billing.accounts import add_card
from flotta.billing.models import BillingAccount
from flotta.devices.service import ensure_owner
from flotta.runtime import Runtime

DEMO_DEVELOPER = "developer@flotta.demo"


def _derived(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), f"flotta-demo:{purpose}".encode(), hashlib.sha256).digest()


def demo_password(secret_key: str, email: str) -> str:
    return "demo-" + base64.b32encode(_derived(secret_key, f"password:{email}")[:10]).decode()


def demo_totp_secret(secret_key: str) -> str:
    return base64.b32encode(_derived(secret_key, "totp")[:20]).decode()


async def _ensure_password(user: User, password: str, passwords: Passwords) -> str | None:
    """Set the demo password unless the user chose their own (then demo.json cannot know it)."""
    if user.password_hash is None:
        user.password_hash = await passwords.hash_async(password)
        return password
    return password if await passwords.verify_async(user.password_hash, password) else None


# A test card number (it passes the Luhn check, and only its last four digits are kept).
DEMO_CARD = "4242 4242 4242 4242"
# The sandbox serves far more than the €10 credit buys (5,000 data requests): with a simulated
# card on file its developer's threshold is raised, so the demo keeps working.
DEMO_THRESHOLD = "100.00"


async def _seed_billing(
    session: AsyncSession, developer: User, now: datetime, configured: bool
) -> None:
    """Give the demo developer a card and, unless the operator configured a default threshold,
    a raised one; once (later edits in the portal are kept)."""
    if await session.get(BillingAccount, developer.id) is not None:
        return
    await add_card(session, developer.id, DEMO_CARD, f"12/{now.year + 5}", now)
    row = await session.get(BillingAccount, developer.id)
    assert row is not None
    row.threshold = None if configured else DEMO_THRESHOLD


async def seed_demo_accounts(
    session: AsyncSession, runtime: Runtime, owner_email: str
) -> tuple[User, dict[str, Any]]:
    """Ensure both accounts can sign in to the portal; return the developer and demo.json's part."""
    secret_key, clock = runtime.settings.secret_key, runtime.clock
    passwords = Passwords()
    owner = await ensure_owner(session, owner_email, "Demo Owner", clock)
    developer = await ensure_owner(session, DEMO_DEVELOPER, "Demo Developer", clock)
    now = clock.now()
    for user in (owner, developer):
        user.email_verified_at = user.email_verified_at or now
    developer.is_admin = True  # the sandbox's operator reviews its own applications
    if developer.totp_enabled_at is None:
        developer.totp_secret = demo_totp_secret(secret_key)
        developer.totp_enabled_at = now
    owner_password = await _ensure_password(
        owner, demo_password(secret_key, owner_email), passwords
    )
    developer_password = await _ensure_password(
        developer, demo_password(secret_key, DEMO_DEVELOPER), passwords
    )
    await session.flush()
    configured = runtime.settings.billing.threshold is not None
    await _seed_billing(session, developer, now, configured)
    info = {
        "developer": {
            "email": DEMO_DEVELOPER,
            "password": developer_password,
            "totp_secret": developer.totp_secret
            if developer.totp_secret == demo_totp_secret(secret_key)
            else None,
        },
        "owner": {"email": owner_email, "password": owner_password},
    }
    return developer, info
