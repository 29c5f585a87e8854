"""The ledger: work as points, money as cents, each in a period.

Deliveries and shifts (`shifts`) count by themselves; other work is logged by the
member and approved by a coordinator who is not that member; income and
expenses are recorded by coordinators. Rows are appended, never rewritten
once their period is closed: a mistake found later is corrected by a new
entry pointing at the old one, settled in the current period. A delivery, a
shift or a job's price is written once even if the caller retries (unique
`source_ref`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.errors import Conflict, NotAllowed, NotFound, UsageError
from coopbot.i18n import t
from coopbot.models import Contribution, Job, LedgerEntry, Member, Period
from coopbot.money import format_milli
from coopbot.outbox import queue_to_coordinators, queue_to_member
from coopbot.services.audit import record
from coopbot.services.money import periods
from coopbot.services.money.periods import insert_once, rowcount, terms_of
from coopbot.services.money.shares import MILLI, Terms, points_for
from coopbot.services.refs import CONTRIBUTION, parse_code
from coopbot.services.text import typed
from coopbot.states import ContributionStatus, PeriodStatus

Row = TypeVar("Row", Contribution, LedgerEntry)


def with_source_ref(session: Session, model: type[Row], source_ref: str) -> Row | None:
    """The row written for `source_ref` (a job, a shift), if there is one."""
    column: Any = getattr(model, "source_ref")  # noqa: B009
    found: Row | None = session.scalars(select(model).where(column == source_ref)).first()
    return found


def add_once(session: Session, model: type[Row], source_ref: str, make: Callable[[], Row]) -> Row:
    """The row for `source_ref`, made by `make` unless it exists, even when two writers race."""
    existing = with_source_ref(session, model, source_ref)
    if existing is not None:
        return existing
    row = make()
    if insert_once(session, row):
        return row
    found = with_source_ref(session, model, source_ref)
    if found is None:
        raise RuntimeError(f"{model.__name__} {source_ref} vanished")
    return found


def current_period(session: Session, config: Config, now: datetime) -> Period:
    """The open period containing `now` (see `periods.current_period`)."""
    return periods.current_period(session, config, now)


# --- deliveries ------------------------------------------------------------------------


def record_delivery(session: Session, config: Config, job: Job, now: datetime) -> Contribution | None:
    """A delivered job: points for its rider, its price as income; both once."""
    if job.assignee_id is None:
        return None
    period = current_period(session, config, now)
    weight = terms_of(period).weight("delivery")
    if weight is None:
        weight = round(config.weights.get("delivery", 1.0) * MILLI)
    ref = f"job:{job.id}"
    contribution = add_once(
        session,
        Contribution,
        ref,
        lambda: Contribution(
            member_id=job.assignee_id,
            period_id=period.id,
            kind="delivery",
            quantity_milli=MILLI,
            points_milli=points_for(MILLI, weight),
            status=ContributionStatus.APPROVED,
            source="job",
            source_ref=ref,
            note=f"J-{job.id}",
            created_at=now,
            decided_at=now,
        ),
    )
    if job.price_cents:
        price = job.price_cents
        add_once(
            session,
            LedgerEntry,
            ref,
            lambda: LedgerEntry(
                period_id=period.id,
                kind="income",
                amount_cents=price,
                note=f"J-{job.id}",
                member_id=job.assignee_id,
                created_at=now,
                source_ref=ref,
            ),
        )
    return contribution


# --- what people log ----------------------------------------------------------------

#: Kinds the bot records by itself; members log the others with /log.
AUTOMATIC_KINDS = ("delivery", "shift")
MAX_HOURS_MILLI = 24 * MILLI
MAX_ITEMS_MILLI = 1000 * MILLI
MAX_NOTE = 300


def loggable_kinds(terms: Terms) -> list[str]:
    return sorted(kind for kind in terms.weights if kind not in AUTOMATIC_KINDS)


def contribution_code(contribution: Contribution) -> str:
    return f"C-{contribution.id}"


def find_contribution(session: Session, ref: str) -> Contribution:
    number = parse_code(ref, CONTRIBUTION)
    found = session.get(Contribution, number)
    if found is None:
        raise NotFound("ledger.no_such_contribution", ref=CONTRIBUTION.show(str(number)))
    return found


def _check_quantity(quantity_milli: int, unit: str, *, correction: bool) -> None:
    limit = MAX_HOURS_MILLI if unit == "hour" else MAX_ITEMS_MILLI
    if quantity_milli == 0 or (quantity_milli < 0 and not correction):
        raise UsageError("ledger.quantity_positive")
    if abs(quantity_milli) > limit:
        key = "ledger.too_many_hours" if unit == "hour" else "ledger.too_many_items"
        raise UsageError(key, most=limit // MILLI)


def weight_of(period: Period, kind: str) -> int:
    terms = terms_of(period)
    weight = terms.weight(kind)
    if weight is None:
        raise UsageError("ledger.unknown_kind", kind=kind[:30], kinds=loggable_kinds(terms))
    return weight


def log_work(
    session: Session,
    config: Config,
    member: Member,
    quantity_milli: int,
    unit: str,
    kind: str,
    note: str,
    now: datetime,
) -> Contribution:
    """A manual entry, pending until a coordinator other than the member approves it."""
    kind = kind.lower()
    if kind in AUTOMATIC_KINDS:
        raise UsageError(f"ledger.automatic_{kind}")
    _check_quantity(quantity_milli, unit, correction=False)
    period = current_period(session, config, now)
    contribution = Contribution(
        member_id=member.id,
        period_id=period.id,
        kind=kind,
        quantity_milli=quantity_milli,
        points_milli=points_for(quantity_milli, weight_of(period, kind)),
        status=ContributionStatus.PENDING,
        source="manual",
        unit=unit,
        note=typed(note, MAX_NOTE),
        created_at=now,
    )
    session.add(contribution)
    session.flush()
    lang = config.coop.default_language
    queue_to_coordinators(
        session,
        config,
        f"contribution:{contribution.id}:logged",
        "ledger.logged_notice",
        now,
        name=member.name,
        ref=contribution_code(contribution),
        what=describe(contribution, lang),
    )
    return contribution


def log_correction(
    session: Session,
    config: Config,
    actor: Member,
    original_ref: str,
    quantity_milli: int,
    unit: str,
    kind: str | None,
    note: str,
    now: datetime,
) -> Contribution:
    """A coordinator's correction: a new, approved entry in the current period
    pointing at the one it corrects, valued at the weights of the original's
    period. A closed period is never rewritten; the close settles the difference."""
    original = find_contribution(session, original_ref)
    if original.member_id == actor.id:
        raise NotAllowed("ledger.cannot_correct_own")
    _check_quantity(quantity_milli, unit, correction=True)
    kind = (kind or original.kind).lower()
    weight = weight_of(period_of(session, original), kind)
    period = current_period(session, config, now)
    correction = Contribution(
        member_id=original.member_id,
        period_id=period.id,
        kind=kind,
        quantity_milli=quantity_milli,
        points_milli=points_for(quantity_milli, weight),
        status=ContributionStatus.APPROVED,
        source="correction",
        unit=unit,
        corrects_id=original.id,
        note=typed(note, MAX_NOTE),
        created_at=now,
        decided_by=actor.id,
        decided_at=now,
    )
    session.add(correction)
    session.flush()
    member = owner_of(session, original)
    record(
        session,
        now,
        "contribution.corrected",
        actor=actor,
        subject=member,
        ref=contribution_code(correction),
        corrects=contribution_code(original),
        points_milli=correction.points_milli,
    )
    _tell_member(
        session,
        config,
        member,
        correction,
        "ledger.corrected_notice",
        now,
        original=contribution_code(original),
        by=actor.name,
    )
    return correction


def decide(
    session: Session,
    config: Config,
    actor: Member,
    ref: str,
    approve: bool,
    now: datetime,
    reason: str = "",
) -> Contribution:
    """Approve or reject a pending entry: never one's own, never in a closed period."""
    contribution = find_contribution(session, ref)
    code = contribution_code(contribution)
    reason = typed(reason, MAX_NOTE)
    if not approve and not reason:
        raise UsageError("ledger.reject_reason_missing", ref=code)
    if not may_decide(actor, contribution):
        raise NotAllowed("ledger.cannot_decide_own", ref=code)
    period = period_of(session, contribution)
    if contribution.status != ContributionStatus.PENDING:
        raise Conflict(f"ledger.already_{contribution.status}", ref=code)
    if period.status != PeriodStatus.OPEN:
        raise Conflict("ledger.decide_closed_period", ref=code, period=period.label)
    status = ContributionStatus.APPROVED if approve else ContributionStatus.REJECTED
    changed = rowcount(
        session.execute(
            update(Contribution)
            .where(Contribution.id == contribution.id, Contribution.status == ContributionStatus.PENDING)
            .values(status=status, decided_by=actor.id, decided_at=now, reject_reason=reason or None)
            .execution_options(synchronize_session="fetch")
        )
    )
    if changed != 1:
        raise Conflict("ledger.already_decided", ref=code)
    session.refresh(contribution)
    member = owner_of(session, contribution)
    record(session, now, f"contribution.{status}", actor=actor, subject=member, ref=code, reason=reason)
    _tell_member(
        session, config, member, contribution, f"ledger.{status}_notice", now, by=actor.name, reason=reason
    )
    return contribution


def may_decide(actor: Member, contribution: Contribution) -> bool:
    """Nobody approves or rejects their own work, whatever their role."""
    return contribution.member_id != actor.id


class Pending(NamedTuple):
    """An entry waiting for approval, whose work it is, and whether the reader may decide it."""

    contribution: Contribution
    owner: Member
    decidable: bool


def pending_for_approval(session: Session, reader: Member) -> list[Pending]:
    """Every pending entry of an open period, oldest first: a closed period's entries wait for
    nobody (they are corrected instead). The reader's own are listed, but not theirs to decide."""
    rows = session.execute(
        select(Contribution, Member)
        .join(Period, Period.id == Contribution.period_id)
        .join(Member, Member.id == Contribution.member_id)
        .where(Contribution.status == ContributionStatus.PENDING, Period.status == PeriodStatus.OPEN)
        .order_by(Contribution.id)
    )
    return [Pending(contribution, owner, may_decide(reader, contribution)) for contribution, owner in rows]


def owner_of(session: Session, contribution: Contribution) -> Member:
    """Whose work an entry counts (a correction counts for the member of the entry it corrects)."""
    return session.get_one(Member, contribution.member_id)


def original_of(session: Session, correction: Contribution) -> Contribution:
    """The entry a correction corrects, which stays as it was in its own period."""
    if correction.corrects_id is None:
        raise ValueError(f"{contribution_code(correction)} corrects nothing")
    return session.get_one(Contribution, correction.corrects_id)


def period_of(session: Session, row: Contribution | LedgerEntry) -> Period:
    """The period an entry counts in: where it was written, not where it is read."""
    return session.get_one(Period, row.period_id)


def _tell_member(
    session: Session,
    config: Config,
    member: Member,
    contribution: Contribution,
    key: str,
    now: datetime,
    **params: str,
) -> None:
    lang = member.language or config.coop.default_language
    text = t(lang, key, ref=contribution_code(contribution), what=describe(contribution, lang), **params)
    queue_to_member(session, member, f"contribution:{contribution.id}:{key}", Outgoing(text), now)


def describe(contribution: Contribution, lang: str) -> str:
    """'2h admin (2 points): accounting for March' in the reader's language, the kind of
    work in words ('2 h administration (2 points) : …' in French)."""
    work = t(
        lang,
        "ledger.work_hours" if contribution.unit == "hour" else "ledger.work_items",
        quantity=format_milli(contribution.quantity_milli, lang),
        kind=contribution.kind,
        points=format_milli(contribution.points_milli, lang),
    )
    return t(lang, "ledger.work_note", work=work, note=contribution.note) if contribution.note else work


# --- money -----------------------------------------------------------------------------


def record_money(
    session: Session, config: Config, actor: Member, kind: str, cents: int, note: str, now: datetime
) -> LedgerEntry:
    """Income or an expense of the current period, recorded by a coordinator."""
    if kind not in ("income", "expense"):
        raise ValueError(kind)
    note = typed(note, MAX_NOTE)
    if not note:
        raise UsageError(f"ledger.{kind}_note_missing")
    period = current_period(session, config, now)
    entry = LedgerEntry(
        period_id=period.id, kind=kind, amount_cents=cents, note=note, created_by=actor.id, created_at=now
    )
    session.add(entry)
    session.flush()
    record(session, now, f"ledger.{kind}", actor=actor, amount_cents=cents, note=note, period=period.label)
    return entry
