"""Warning mails: 80 % of the billing threshold (reference §8), and an app past its budget.

Each is sent once per account, month and kind: the notice row and the queued mail commit
together, and its primary key stops a second process from sending it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.accounts.models import User
from flotta.billing.models import BillingNotice
from flotta.billing.prices import cents_text
from flotta.clock import Clock
from flotta.mail.service import queue_mail

if TYPE_CHECKING:
    from flotta.billing.meter import AccountMonth, Meter

WARN_AT = Fraction(80, 100)
THRESHOLD_KIND = "threshold-80"


@dataclass(frozen=True, slots=True)
class Notice:
    month: str
    kind: str
    subject: str
    body: str


def due(meter: Meter, month: AccountMonth) -> list[Notice]:
    """The warnings this month's usage calls for (sent or not)."""
    found: list[Notice] = []
    currency = meter.book.currency
    spent = meter.cost(month.quantities())
    if month.threshold > 0 and spent >= WARN_AT * month.threshold:
        found.append(
            Notice(
                month.month,
                THRESHOLD_KIND,
                f"Flotta: 80 % of your {month.month} billing threshold is used",
                f"Usage this month is {cents_text(spent)} {currency} of your "
                f"{cents_text(month.threshold)} {currency} threshold. At the threshold your apps "
                "are refused (403 account disabled: EXCEEDED_LIMIT) until the month ends or you "
                "raise it; raising it needs a payment method. See Billing in the portal.",
            )
        )
    for client_id, budget in sorted(month.budgets.items()):
        app_spent = meter.cost(month.per_app.get(client_id, {}))
        if app_spent >= budget:
            found.append(
                Notice(
                    month.month,
                    f"budget:{client_id}",
                    f"Flotta: app {client_id} passed its {month.month} budget",
                    f"App {client_id} has used {cents_text(app_spent)} {currency} this month, "
                    f"past the budget of {cents_text(budget)} {currency} you set. Budgets only "
                    "warn: the app keeps working until the account's threshold.",
                )
            )
    return found


async def send(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    account_id: int,
    notices: list[Notice],
) -> list[Notice]:
    """Queue each notice's mail unless it was sent before (by any process); return those that
    are now known to be sent."""
    settled: list[Notice] = []
    for notice in notices:
        try:
            async with sessions() as db, db.begin():
                user = await db.get(User, account_id)
                if user is None:
                    return settled
                if await db.get(BillingNotice, (account_id, notice.month, notice.kind)):
                    settled.append(notice)
                    continue
                db.add(
                    BillingNotice(
                        account_id=account_id,
                        month=notice.month,
                        kind=notice.kind,
                        sent_at=clock.now(),
                    )
                )
                await queue_mail(db, clock, to=user.email, subject=notice.subject, body=notice.body)
            settled.append(notice)
        except IntegrityError:
            settled.append(notice)  # another process sent it first
    return settled
