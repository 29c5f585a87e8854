"""The funds the co-op keeps, and the one way money leaves them: a binding vote.

Each close puts part of the surplus into the legal reserve and part into the
development fund (plus any dividend nobody could share, which the books file
with the development fund under "other reserves"); those amounts are already
in each closed period's totals, so a balance is read from them, never stored
twice. The members spend the development fund by co-budgeting:
`/propose Buy two cargo bikes --spend 3200.00 from development_fund --to
"Vélos Dupont"` opens a binding poll whose action, when it passes, writes one
`FundSpending` row in the poll's close transaction. The same check runs when
the poll is proposed (asking more than the balance is refused then) and again
at the close (a fund spent meanwhile makes the poll fail with the reason).

The legal reserve is never spendable by a poll: French co-op law keeps it
(loi 78-763 art. 33 for SCOPs: at least 15% of each surplus goes to it; loi
47-1775 art. 16: reserves are never shared out among members), to absorb
losses. Naming it in `--spend` is refused with that reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_date
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.errors import UsageError
from coopbot.i18n import t
from coopbot.models import FundSpending, Period, Poll
from coopbot.money import format_money, parse_amount
from coopbot.services.audit import record
from coopbot.services.polls.settings import register_action
from coopbot.services.refs import echo
from coopbot.states import PeriodStatus

LEGAL_RESERVE = "legal_reserve"
DEVELOPMENT_FUND = "development_fund"
FUNDS = (LEGAL_RESERVE, DEVELOPMENT_FUND)
#: What members may type for each fund, in either language.
FUND_WORDS = {
    **dict.fromkeys(("development_fund", "development", "dev", "fund", "fonds", "fonds_de_developpement",
                     "fonds_de_développement", "fonds_developpement", "fonds_développement"), DEVELOPMENT_FUND),
    **dict.fromkeys(("legal_reserve", "reserve", "réserve", "reserve_legale", "réserve_légale", "legal"),
                    LEGAL_RESERVE),
}  # fmt: skip
MAX_PAYEE = 100
#: `3200.00 from development_fund`, `3 200,00 € du fonds`, then optionally `to Vélos Dupont`.
TYPED = re.compile(r"^(?P<amount>.+?)\s+(?:from|de|du|sur)\s+(?P<fund>\S+)(?:\s+(?:to|à|a|pour)\s+(?P<payee>.+))?$",
                   re.IGNORECASE | re.DOTALL)  # fmt: skip
#: What a poll stores: `development_fund 320000` and the payee, if any, after one space.
CANONICAL = re.compile(r"^(?P<fund>[a-z_]+) (?P<cents>[0-9]+)(?: (?P<payee>.+))?$", re.DOTALL)


@dataclass(frozen=True)
class Spend:
    """One spending a poll asks for."""

    fund: str
    cents: int
    payee: str | None

    def canonical(self) -> str:
        return f"{self.fund} {self.cents}" + (f" {self.payee}" if self.payee else "")


@dataclass(frozen=True)
class Movement:
    """Money into or out of the funds: a close (both funds at once) or a spending."""

    at: datetime
    legal_reserve: int
    development_fund: int
    #: the period's label, or what the spending bought
    what: str
    payee: str | None = None
    poll_id: int | None = None


@dataclass(frozen=True)
class Funds:
    legal_reserve: int
    development_fund: int
    #: oldest first
    history: list[Movement]


# --- reading a spending -------------------------------------------------------------


def read_spend(text: str) -> Spend:
    """`3200.00 from development_fund [to Vélos Dupont]`, or one sentence saying what to type."""
    typed = " ".join(text.split())
    found = TYPED.match(typed)
    if found is None:
        raise UsageError("funds.spend_usage", typed=echo(typed))
    fund = FUND_WORDS.get(found["fund"].casefold())
    if fund == LEGAL_RESERVE:
        raise UsageError("funds.legal_reserve_kept")
    if fund is None:
        raise UsageError("funds.unknown_fund", fund=echo(found["fund"]))
    payee = (found["payee"] or "").strip().strip("\"'“”«» ") or None
    if payee is not None and len(payee) > MAX_PAYEE:
        raise UsageError("funds.payee_too_long", most=MAX_PAYEE)
    return Spend(fund, parse_amount(found["amount"]), payee)


def from_canonical(value: str) -> Spend:
    found = CANONICAL.match(value)
    if found is None or found["fund"] not in FUNDS:
        raise ValueError(f"not a stored spending: {value!r}")
    return Spend(found["fund"], int(found["cents"]), found["payee"])


def parse_spend(text: str) -> str:
    return read_spend(text).canonical()


# --- the balances -------------------------------------------------------------------


def closes(session: Session) -> list[Movement]:
    """What each closed period put into the funds, from the totals its close stored."""
    periods = session.scalars(
        select(Period).where(Period.status == PeriodStatus.CLOSED).order_by(Period.ends_at, Period.id)
    )
    found = []
    for period in periods:
        totals = period.totals
        kept = int(totals.get("kept", 0))  # dividend nobody had points for: the co-op keeps it
        reserve, fund = int(totals.get("legal_reserve", 0)), int(totals.get("development_fund", 0)) + kept
        if reserve or fund:
            found.append(Movement(period.closed_at or period.ends_at, reserve, fund, period.label))
    return found


def spendings(session: Session) -> list[Movement]:
    rows = session.scalars(select(FundSpending).order_by(FundSpending.spent_at, FundSpending.id))
    return [Movement(row.spent_at, 0, -row.amount_cents, row.purpose, row.payee, row.poll_id) for row in rows]


def funds(session: Session) -> Funds:
    history = sorted([*closes(session), *spendings(session)], key=lambda movement: movement.at)
    return Funds(
        sum(movement.legal_reserve for movement in history),
        sum(movement.development_fund for movement in history),
        history,
    )


def development_balance(session: Session) -> int:
    added = sum(movement.development_fund for movement in closes(session))
    spent = session.scalar(select(func.coalesce(func.sum(FundSpending.amount_cents), 0)))
    return added - int(spent or 0)


# --- the binding action -------------------------------------------------------------


def check_spend(session: Session, config: Config, value: str, now: datetime) -> None:
    """Run when the poll is proposed and again when it passes: the fund must hold the amount."""
    spend = from_canonical(value)
    balance = development_balance(session)
    if spend.cents > balance:
        currency = config.coop.currency
        lang = config.coop.default_language
        raise UsageError(
            "funds.over_balance",
            amount=format_money(spend.cents, currency, lang),
            balance=format_money(balance, currency, lang),
        )


def spend(session: Session, config: Config, value: str, now: datetime, poll: Poll | None) -> None:
    """The poll passed: the money leaves the fund, in the poll's close transaction."""
    chosen = from_canonical(value)
    row = FundSpending(
        fund=chosen.fund,
        amount_cents=chosen.cents,
        purpose=poll.title if poll is not None else "",
        payee=chosen.payee,
        poll_id=poll.id if poll is not None else None,
        spent_at=now,
    )
    session.add(row)
    session.flush()
    record(session, now, "fund.spent", fund=chosen.fund, amount_cents=chosen.cents,
           poll=f"P-{poll.id}" if poll is not None else None)  # fmt: skip


def spend_words(lang: str, value: str, currency: str) -> str:
    """The action as a ballot and a result read it: "spend €3,200.00 of the development fund, paid to …"."""
    chosen = from_canonical(value)
    amount = format_money(chosen.cents, currency, lang)
    if chosen.payee:
        return t(lang, "funds.spend_to", amount=amount, payee=chosen.payee)
    return t(lang, "funds.spend", amount=amount)


register_action("spend", parse_spend, spend, restricted=False, check=check_spend, words=spend_words)


# --- what /funds shows --------------------------------------------------------------

#: The newest movements `/funds` lists; `/funds all` lists every one.
RECENT = 8


def day(config: Config, moment: datetime, lang: str) -> str:
    return format_date(moment.astimezone(config.coop.tz).date(), format=t(lang, "funds.day_format"), locale=lang)


def movement_line(config: Config, movement: Movement, lang: str) -> str:
    currency = config.coop.currency
    if movement.poll_id is None:
        return t(lang, "funds.line_close", period=movement.what,
                 reserve=format_money(movement.legal_reserve, currency, lang),
                 fund=format_money(movement.development_fund, currency, lang))  # fmt: skip
    payee = t(lang, "funds.line_payee", payee=movement.payee) if movement.payee else ""
    amount = format_money(-movement.development_fund, currency, lang)
    return t(lang, "funds.line_spent", day=day(config, movement.at, lang), poll=f"P-{movement.poll_id}",
             amount=amount, what=movement.what, payee=payee)  # fmt: skip


def funds_text(session: Session, config: Config, lang: str, *, everything: bool = False) -> str:
    held = funds(session)
    currency = config.coop.currency
    lines = [
        t(lang, "funds.title"),
        t(lang, "funds.legal_reserve", amount=format_money(held.legal_reserve, currency, lang)),
        t(lang, "funds.development_fund", amount=format_money(held.development_fund, currency, lang)),
    ]
    if not held.history:
        lines.append(t(lang, "funds.nothing_yet"))
        return "\n".join(lines)
    shown = held.history if everything else held.history[-RECENT:]
    lines.append(t(lang, "funds.history"))
    lines += [movement_line(config, movement, lang) for movement in reversed(shown)]
    if len(shown) < len(held.history):
        lines.append(t(lang, "funds.more", count=len(held.history) - len(shown)))
    lines.append(t(lang, "funds.how_to_spend"))
    return "\n".join(lines)
