"""`flotta token`: mint an access token for an existing account."""

from __future__ import annotations

from flotta.accounts.repository import UserRepository
from flotta.clock import SystemClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.migrate import upgrade_to_head
from flotta.runtime import build_token_service
from flotta.settings import Settings


async def mint_for(settings: Settings, email: str, scopes: list[str], ttl_s: int) -> str:
    """Look the account up by e-mail and sign a token for it; LookupError if there is none."""
    engine = make_engine(settings.database_url)
    try:
        await upgrade_to_head(engine)
        async with make_sessionmaker(engine)() as session:
            user = await UserRepository(session).by_email(email)
    finally:
        await engine.dispose()
    if user is None:
        raise LookupError(f"no account {email!r}; run `flotta demo` first or create it")
    clock = SystemClock()
    return build_token_service(settings, clock).mint(user.uuid, scopes, ttl_s=ttl_s)
