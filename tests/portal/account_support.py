"""A browser-like httpx client for the portal's account pages, and outbox helpers."""

from __future__ import annotations

import html
import re
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pyotp
from sqlalchemy import select

from flotta.accounts.models import AccountToken, User
from flotta.mail.models import OutboxMessage
from tests.live import LiveDemo

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
_LINK = re.compile(r"https?://\S+")


def new_email(label: str = "dev") -> str:
    return f"{label}-{secrets.token_hex(4)}@example.com"


class Browser:
    """Cookies, CSRF tokens taken from the page, and no automatic redirects (tests check them)."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=20, follow_redirects=False)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.client.get(path, params=params or None)

    def csrf(self, path: str) -> str:
        page = self.get(path)
        found = _CSRF.search(page.text)
        assert found, f"no CSRF token on {path} ({page.status_code})"
        return found.group(1)

    def submit(self, page: str, action: str, **fields: str) -> httpx.Response:
        """Load `page` for its CSRF token, then post the form to `action`."""
        return self.post(action, {"csrf_token": self.csrf(page), **fields})

    def post(self, action: str, fields: dict[str, str]) -> httpx.Response:
        return self.client.post(action, data=fields)

    @property
    def session_cookie(self) -> str | None:
        return self.client.cookies.get("flotta_session")


def text_of(response: httpx.Response) -> str:
    """The page's text with tags removed and entities decoded, whitespace collapsed."""
    stripped = re.sub(r"<[^>]+>", " ", response.text)
    return " ".join(html.unescape(stripped).split())


def sign_up(browser: Browser, email: str, password: str = PASSWORD, name: str = "Ada") -> None:
    answer = browser.submit(
        "/portal/signup", "/portal/signup", email=email, full_name=name, password=password
    )
    assert answer.status_code == 303, text_of(answer)
    assert answer.headers["location"] == "/portal/signup/sent"


def sign_in(
    browser: Browser, email: str, password: str = PASSWORD, next_url: str = "/portal/account"
) -> httpx.Response:
    return browser.submit(
        "/portal/login", "/portal/login", email=email, password=password, next=next_url
    )


def sign_out(browser: Browser) -> None:
    answer = browser.submit("/portal/account", "/portal/logout")
    assert answer.status_code == 303


def mails_to(live: LiveDemo, address: str) -> list[OutboxMessage]:
    """The outbox rows for one address, oldest first."""

    async def query() -> list[OutboxMessage]:
        async with live.handle.runtime.sessions() as db:
            rows = await db.execute(
                select(OutboxMessage)
                .where(OutboxMessage.to_address == address)
                .order_by(OutboxMessage.id)
            )
            return list(rows.scalars())

    return live.call(query())


def link_in(body: str, path: str) -> str:
    """The first link in a mail body whose path is `path`; returned relative to the server."""
    for url in _LINK.findall(body):
        parsed = httpx.URL(url)
        if parsed.path == path:
            return f"{parsed.path}?{parsed.query.decode()}"
    raise AssertionError(f"no {path} link in:\n{body}")


def wait_for_mail(live: LiveDemo, address: str, count: int = 1, timeout: float = 10) -> list[Any]:
    """Outbox rows for `address` once there are `count` of them (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = mails_to(live, address)
        if len(rows) >= count or time.monotonic() > deadline:
            assert len(rows) >= count, f"{len(rows)} of {count} mails to {address}"
            return rows
        time.sleep(0.05)


def update_user(live: LiveDemo, email: str, **values: Any) -> User:
    """Change an account's columns directly (to move time past a lock, for instance)."""

    async def change() -> User:
        async with live.handle.runtime.sessions() as db, db.begin():
            user = (await db.execute(select(User).where(User.email == email))).scalar_one()
            for name, value in values.items():
                setattr(user, name, value)
            return user

    return live.call(change())


def user_row(live: LiveDemo, email: str) -> User | None:
    async def query() -> User | None:
        async with live.handle.runtime.sessions() as db:
            found = await db.execute(select(User).where(User.email == email))
            return found.scalar_one_or_none()

    return live.call(query())


def expire_links(live: LiveDemo, email: str) -> None:
    """Make every one-time link of the account expired, as if a day had passed."""

    async def change() -> None:
        async with live.handle.runtime.sessions() as db, db.begin():
            user = (await db.execute(select(User).where(User.email == email))).scalar_one()
            tokens = await db.execute(select(AccountToken).where(AccountToken.user_id == user.id))
            for token in tokens.scalars():
                token.expires_at = live.handle.runtime.clock.now() - timedelta(seconds=1)
                token.created_at -= timedelta(days=1)

    live.call(change())


def age_links(live: LiveDemo, email: str, seconds: float = 120) -> None:
    """Make the account's links older (still valid), past the one-link-a-minute limit."""

    async def change() -> None:
        async with live.handle.runtime.sessions() as db, db.begin():
            user = (await db.execute(select(User).where(User.email == email))).scalar_one()
            tokens = await db.execute(select(AccountToken).where(AccountToken.user_id == user.id))
            for token in tokens.scalars():
                token.created_at -= timedelta(seconds=seconds)

    live.call(change())


def verified_account(live: LiveDemo, browser: Browser, email: str) -> None:
    """Sign up through the portal and follow the confirmation link from the outbox."""
    sign_up(browser, email)
    link = link_in(wait_for_mail(live, email)[0].body_text, "/portal/verify")
    assert browser.get(link).status_code == 200


def enrol_totp(browser: Browser) -> tuple[pyotp.TOTP, list[str]]:
    """Turn on TOTP from the enrolment page; returns the authenticator and recovery codes."""
    page = browser.get("/portal/account/mfa")
    assert page.status_code == 200, text_of(page)
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page.text)
    assert secret, "no secret on the enrolment page"
    authenticator = pyotp.TOTP(secret.group(1).replace(" ", ""))
    answer = browser.submit("/portal/account/mfa", "/portal/account/mfa", code=authenticator.now())
    assert answer.status_code == 200, text_of(answer)
    codes = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", answer.text)
    assert len(codes) == 10
    return authenticator, codes


def code_at(authenticator: pyotp.TOTP, offset_steps: int) -> str:
    """The code of a step next to the current one (the server accepts ±1)."""
    return authenticator.at(datetime.now().timestamp() + 30 * offset_steps)
