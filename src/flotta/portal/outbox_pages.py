"""The demo's outbox: every e-mail the server queued, so the demo works without a mail server."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from markupsafe import Markup, escape
from starlette.responses import Response

from flotta.mail.dispatcher import LOGGED_ONLY, MAX_ATTEMPTS
from flotta.mail.models import OutboxMessage
from flotta.mail.repository import OutboxRepository
from flotta.portal.web import PORTAL, render, runtime_of, signed_in

router = APIRouter(include_in_schema=False)

# In escaped text: quotes and angle brackets are entities, so a URL ends at them or at a space.
_URL = re.compile(r"https?://[^\s<>\"']+?(?=[.,;:!?)]*(?:\s|$|&lt;|&gt;|&quot;|&#34;|&#39;))")


@dataclass(frozen=True, slots=True)
class ShownMessage:
    to: str
    subject: str
    created_at: datetime
    state: str
    body: Markup


def linkify(text: str) -> Markup:
    """Escape the body, then make its http(s) URLs clickable."""
    escaped = str(escape(text))
    return Markup(_URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped))


def delivery_state(message: OutboxMessage) -> str:
    if message.sent_at is not None:
        return f"sent {message.sent_at:%Y-%m-%d %H:%M:%S} UTC"
    if message.last_error == LOGGED_ONLY:
        return "not sent (no SMTP host configured); printed in the server log"
    if message.attempts >= MAX_ATTEMPTS:
        return f"gave up after {message.attempts} attempts: {message.last_error}"
    if message.attempts:
        return f"retrying (attempt {message.attempts} failed: {message.last_error})"
    return "queued"


@router.get(f"{PORTAL}/outbox")
async def outbox(request: Request) -> Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as db:
        await signed_in(request, db)
        if not runtime.settings.demo:
            reason = "The outbox is shown only in the demo (`flotta demo`)."
            return render(request, "not_found.html", {"reason": reason}, status=404)
        rows = await OutboxRepository(db).newest()
    shown = [
        ShownMessage(m.to_address, m.subject, m.created_at, delivery_state(m), linkify(m.body_text))
        for m in rows
    ]
    return render(request, "outbox.html", {"messages": shown})
