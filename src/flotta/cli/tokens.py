"""`flotta token`: mint an access token for an existing account."""

from __future__ import annotations

from flotta.accounts.repository import UserRepository
from flotta.clock import SystemClock
from flotta.db.migrate import migrated
from flotta.runtime import build_token_service
from flotta.settings import Settings


async def mint_for(settings: Settings, email: str, scopes: list[str], ttl_s: int) -> str:
    """Look the account up by e-mail and sign a token for it; LookupError if there is none."""
    async with migrated(settings.database_url) as sessions, sessions() as session:
        user = await UserRepository(session).by_email(email)
    if user is None:
        raise LookupError(f"no account {email!r}; run `flotta demo` first or create it")
    clock = SystemClock()
    return build_token_service(settings, clock).mint(user.uuid, scopes, ttl_s=ttl_s)
