"""Paying members their shares: where each is paid (the IBAN), the bank file, and who was paid.

The IBAN is personal data that could move money, so it is kept like a
shop's webhook secret (`services.dispatch.webhooks`): sealed with AES-256-GCM
under a key derived from the server key and bound to the member's number.
A backup of the database alone does not show it, and a sealed IBAN copied to
another member's row does not open. Nothing of it is stored in clear, not
even the last digits: the masked form (`FR76 •••• •••• 0189`) is made by
opening it, which only the treasurer's commands and the member's own
`/iban`, `/mydata` do. Leaving erases the column (`data.leaving`).

An allocation is paid in full or not at all: the payout is its total
(dividend + base pay), in integer cents. Marking is idempotent (only unpaid
allocations change, each change audited) and the member is told once per
period, under an outbox key per (period, member), however often it is
marked, undone and marked again. A bank file only ever holds unpaid
allocations, so a period paid in two runs never pays anyone twice.

schwifty checks the IBAN (country, length, checksum, national rules) and
sepaxml writes the pain.001 file; both are imported by the functions that
use them, so the idle bot does not load them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.errors import UsageError
from coopbot.i18n import t
from coopbot.models import Allocation, Member, Period
from coopbot.money import format_money
from coopbot.outbox import queue_to_member
from coopbot.services.audit import record

METHODS = ("sepa", "cash", "other")
#: The longest IBAN (Saint Lucia, 32) with spaces every 4 characters, and room for typing.
MAX_TYPED = 60
_SEAL_LABEL = b"coopbot iban seal v1"
SEPA_UNSAFE = re.compile(r"[^A-Za-z0-9/?:().,'+ -]")


# --- the IBAN ----------------------------------------------------------------------


def parse_iban(text: str) -> str:
    """The IBAN in its compact form, or one sentence saying what is wrong and what to type."""
    from schwifty import IBAN
    from schwifty.exceptions import (
        InvalidChecksumDigits,
        InvalidCountryCode,
        InvalidLength,
        InvalidStructure,
        SchwiftyException,
    )

    shown = text.strip()[:MAX_TYPED]
    try:
        iban = IBAN(shown)
    except InvalidChecksumDigits:
        raise UsageError("payouts.iban_checksum", iban=shown) from None
    except InvalidLength:
        raise UsageError("payouts.iban_length", iban=shown) from None
    except InvalidCountryCode:
        raise UsageError("payouts.iban_country", iban=shown) from None
    except (InvalidStructure, SchwiftyException, ValueError):
        raise UsageError("payouts.iban_bad", iban=shown) from None
    if not iban.in_sepa_zone:
        raise UsageError("payouts.iban_not_sepa", country=iban.country_code)
    return str(iban.compact)


def masked(iban: str) -> str:
    """Country and check digits, then the last four: enough to recognise it, not to use it."""
    return f"{iban[:4]} •••• •••• {iban[-4:]}"


def _owner(member_id: int) -> str:
    """A sealed IBAN opens for its own member only: copied to another row, it does not."""
    return f"iban:{member_id}"


def set_iban(session: Session, config: Config, member: Member, typed: str, now: datetime) -> str:
    """Check and seal the member's IBAN; returns it masked. The audit says it changed, never what to."""
    from coopbot.secrets import seal

    iban = parse_iban(typed)
    member.iban_sealed = seal(config, _SEAL_LABEL, _owner(member.id), iban.encode())
    record(session, now, "member.iban_set", actor=member, subject=member)
    session.flush()
    return masked(iban)


def iban_of(config: Config, member: Member) -> str | None:
    """The member's IBAN opened, or None without one. A server key that no longer opens it is `KeyLost`."""
    from coopbot.secrets import unseal

    if not member.iban_sealed:
        return None
    lost = (f"the IBAN of member #{member.id} does not open with the server key: was {config.coop.secret_env} "
            "or the key file changed? The member must type /iban again")  # fmt: skip
    return unseal(config, _SEAL_LABEL, _owner(member.id), member.iban_sealed, lost=lost).decode()


# --- the period's payouts -----------------------------------------------------------


def total(allocation: Allocation) -> int:
    return allocation.dividend_cents + allocation.base_pay_cents


def allocations(session: Session, period: Period, member_id: int | None = None) -> list[tuple[Allocation, Member]]:
    """The period's allocations with a total above zero, by member number."""
    query = (
        select(Allocation, Member).join(Member, Member.id == Allocation.member_id)
        .where(Allocation.period_id == period.id, Allocation.dividend_cents + Allocation.base_pay_cents > 0)
        .order_by(Allocation.member_id)
    )  # fmt: skip
    if member_id is not None:
        query = query.where(Allocation.member_id == member_id)
    return [(allocation, member) for allocation, member in session.execute(query)]


@dataclass(frozen=True)
class Totals:
    paid_cents: int
    paid: int
    unpaid_cents: int
    unpaid: int
    #: Members owed money who have not registered an IBAN: the bank file leaves them out.
    without_iban: int


def totals(session: Session, period: Period) -> Totals:
    rows = allocations(session, period)
    paid = [total(a) for a, _ in rows if a.paid]
    unpaid = [total(a) for a, m in rows if not a.paid]
    missing = sum(1 for a, m in rows if not a.paid and not m.iban_sealed)
    return Totals(sum(paid), len(paid), sum(unpaid), len(unpaid), missing)


def closed_period(session: Session, label: str) -> Period:
    """The closed period called `label`: only a close writes allocations, so only it can be paid."""
    period = session.scalars(select(Period).where(Period.label == label)).first()
    if period is None or period.status != "closed":
        raise UsageError("payouts.not_closed", period=label[:30])
    return period


def latest_closed(session: Session) -> Period | None:
    return session.scalars(select(Period).where(Period.status == "closed").order_by(Period.ends_at.desc())).first()


@dataclass(frozen=True)
class Transfer:
    member: Member
    iban: str
    cents: int


def transfers(session: Session, config: Config, period: Period) -> tuple[list[Transfer], list[Member]]:
    """What the bank file pays (every unpaid allocation whose member has an IBAN), and who is left out."""
    due, missing = [], []
    for allocation, member in allocations(session, period):
        if allocation.paid:
            continue
        iban = iban_of(config, member)
        if iban is None:
            missing.append(member)
        else:
            due.append(Transfer(member, iban, total(allocation)))
    return due, missing


def sepa_xml(config: Config, period: Period, due: list[Transfer], debtor: dict[str, str], on: date) -> bytes:
    """A pain.001.001.03 credit transfer, one transaction per member, checked against the XSD.

    sepaxml validates what it writes against the schema it ships (the ISO
    20022 pain.001.001.03 XSD) and refuses to return a file that fails.
    """
    from sepaxml import SepaTransfer  # type: ignore[import-untyped]  # sepaxml ships no type hints

    transfer = SepaTransfer({"name": debtor["name"], "IBAN": debtor["iban"], "BIC": debtor["bic"], "batch": True,
                             "currency": config.coop.currency}, clean=True)  # fmt: skip
    for item in due:
        transfer.add_payment({
            "name": sepa_text(item.member.name), "IBAN": item.iban, "amount": item.cents, "execution_date": on,
            "description": sepa_text(f"{config.coop.name} {period.label} member {item.member.id}"),
            "endtoend_id": f"P{period.id}M{item.member.id}",
        })  # fmt: skip
    xml: bytes = transfer.export(validate=True)
    return xml


def sepa_text(text: str) -> str:
    """Text in the characters every SEPA bank accepts (EPC's basic Latin set): accents dropped
    (`Chloé` → `Chloe`), anything else (`&`, `#`, emoji) a space, so no bank rejects a line."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(SEPA_UNSAFE.sub(" ", plain).split()) or "-"


def paid_moment(config: Config, on: date) -> datetime:
    """A day as the moment stored: noon in the co-op's time zone, so it reads back as that day."""
    return datetime.combine(on, time(12), tzinfo=config.coop.tz)


def mark_paid(session: Session, config: Config, period: Period, member_id: int | None, on: date, method: str,
              actor: Member | None, now: datetime) -> list[Allocation]:
    """Mark the period's unpaid allocations paid (one member's with `member_id`); returns those marked.

    Already paid ones are left as they are: marking twice changes nothing and tells nobody again.
    """
    marked = []
    for allocation, member in allocations(session, period, member_id):
        if allocation.paid:
            continue
        allocation.paid, allocation.paid_at, allocation.paid_method = True, paid_moment(config, on), method
        record(session, now, "allocation.paid", actor=actor, subject=member, period=period.label,
               amount_cents=total(allocation), method=method, day=on.isoformat())  # fmt: skip
        if member.active:
            queue_to_member(session, member, f"payout:{period.id}:{member.id}", paid_message(config, period,
                            allocation, member.language or config.coop.default_language), now)  # fmt: skip
        marked.append(allocation)
    session.flush()
    return marked


def unmark_paid(session: Session, period: Period, member_id: int | None, actor: Member | None,
                now: datetime) -> list[Allocation]:
    """Undo a marking (a transfer the bank returned, a mistake): audited, and the member not told again."""
    undone = []
    for allocation, member in allocations(session, period, member_id):
        if not allocation.paid:
            continue
        record(session, now, "allocation.unpaid", actor=actor, subject=member, period=period.label,
               amount_cents=total(allocation), method=allocation.paid_method)  # fmt: skip
        allocation.paid, allocation.paid_at, allocation.paid_method = False, None, None
        undone.append(allocation)
    session.flush()
    return undone


def paid_day(config: Config, allocation: Allocation, lang: str) -> str:
    """`5 December`, `5 décembre`: the day it was paid, in the co-op's time zone."""
    moment = allocation.paid_at
    assert moment is not None
    return format_date(moment.astimezone(config.coop.tz).date(), format=t(lang, "payouts.day_format"), locale=lang)


def paid_message(config: Config, period: Period, allocation: Allocation, lang: str) -> Outgoing:
    return Outgoing(t(lang, "payouts.paid_notice", period=period.label,
                      amount=format_money(total(allocation), config.coop.currency, lang),
                      day=paid_day(config, allocation, lang),
                      method=t(lang, f"payouts.method.{allocation.paid_method or 'other'}")))  # fmt: skip


def paid_status(config: Config, allocation: Allocation, lang: str) -> str:
    """`paid on 5 December by bank transfer`, or `not paid yet`; empty when nothing is owed."""
    if total(allocation) <= 0:
        return ""
    if not allocation.paid:
        return t(lang, "payouts.status_unpaid")
    if allocation.paid_at is None:  # marked paid before the day and the method were kept
        return t(lang, "payouts.status_paid_before")
    return t(lang, "payouts.status_paid", day=paid_day(config, allocation, lang),
             method=t(lang, f"payouts.method.{allocation.paid_method or 'other'}"))  # fmt: skip
