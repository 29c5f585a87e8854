"""Dispatch fairness and the audit log, as the public may read them.

Fairness is what a platform would never publish: how the offers and the
jobs of this period spread over the riders. It is shown as a distribution
(how many riders got 0, 1, 2… jobs), so anyone can see whether work is
shared evenly without learning who rode how much.

The page names nobody: it is read by strangers, search engines and former
members alike. A member is "member #12" (the number /audit and the share
messages already use), a customer "a customer", a former member their
pseudonym (`public_name`). A member may choose to be named (`/public on`)
once the member table records that choice; until then everyone is a number.

The audit log is `/audit`'s, worded with its sentences, but with people by
number and only the details that say what the co-op did: a setting, an
amount, a vote's code, a role. Free text typed by a member (a note, a
reason, the title of a poll removing someone) and anything of a ballot are
left out, so the log can name nobody.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.i18n import catalogue, placeholders, render, t, term
from coopbot.models import AuditEntry, Job, Member, Offer
from coopbot.money import format_milli, format_money
from coopbot.services import audit as audit_trail
from coopbot.services.members.accounts import IS_MEMBER, is_customer, is_erased, pseudonym_shown
from coopbot.services.money.periods import period_at, period_bounds
from coopbot.services.polls import settings
from coopbot.states import JobStatus, Role

AUDIT_LINES = 20
#: Jobs a rider has taken (a job offered and passed, or cancelled, is not theirs).
TAKEN = (JobStatus.ASSIGNED, JobStatus.PICKED_UP, JobStatus.DELIVERED)
#: The only details of an audit entry the public reads: what was done, never free text.
SHOWN_DETAILS = {
    "key",
    "old",
    "new",
    "value",
    "sets",
    "poll",
    "kind",
    "outcome",
    "turnout",
    "active",
    "role",
    "platform",
    "period",
    "amount_cents",
    "surplus_cents",
    "dividend_cents",
    "points_milli",
    "ref",
    "corrects",
    "announcement",
    "target",
    "title",
}
VOCABULARIES = {"kind": "polls.kind", "outcome": "data.outcome", "target": "data.target"}
MAX_DETAIL = 80


def public_name(member: Member, lang: str) -> str:
    """A member's public name: their name only if they chose it (`/public on`), never an account
    of theirs; a customer is never named, a former member only by their pseudonym."""
    if is_erased(member):
        return pseudonym_shown(member, lang)
    if is_customer(member):
        return t(lang, "public.customer")
    if member.public_name and member.active:
        return member.name
    return t(lang, "public.member", number=member.id)


@dataclass(frozen=True)
class Fairness:
    period: str
    riders: int
    offers: int
    jobs: int
    #: (number of offers, riders who received that many), fewest first; the same for jobs.
    offers_spread: list[tuple[int, int]]
    jobs_spread: list[tuple[int, int]]
    #: "fewest 0, median 1, most 3" for the jobs; empty without riders.
    jobs_summary: str
    #: (name, offers, jobs) of the riders who chose to be named (`/public on`), by name.
    named: list[tuple[str, int, int]] = field(default_factory=list)


def fairness(session: Session, config: Config, now: datetime, lang: str) -> Fairness:
    """This period's offers and jobs per rider, as a distribution; a rider is named beside it
    only if they chose to be (`/public on`).

    A rider is a member who was offered or given a job this period, or who is
    riding now (so a rider who got nothing counts, as a zero).
    """
    period = period_at(session, now)
    if period is not None:
        start, label = period.starts_at, period.label
    else:
        start, _, label = period_bounds(config.periods.schedule, config.coop.tz, now)
    offered = session.execute(
        select(Offer.member_id, func.count())
        .join(Member, Member.id == Offer.member_id)
        .where(Offer.offered_at >= start, Offer.offered_at <= now, IS_MEMBER)
        .group_by(Offer.member_id)
    )
    offers: dict[int, int] = dict(offered.all())
    taken = session.execute(
        select(Member.id, func.count())
        .join(Job, Job.assignee_id == Member.id)
        .where(Job.created_at >= start, Job.created_at <= now, Job.status.in_(TAKEN), IS_MEMBER)
        .group_by(Member.id)
    )
    jobs: dict[int, int] = dict(taken.all())
    riding = set(
        session.scalars(select(Member.id).where(Member.available.is_(True), Member.active.is_(True), IS_MEMBER))
    )
    riders = set(offers) | set(jobs) | riding
    offer_counts = [offers.get(rider, 0) for rider in riders]
    job_counts = [jobs.get(rider, 0) for rider in riders]
    summary = ""
    if job_counts:
        middle = median(job_counts)
        summary = t(
            lang,
            "public.jobs_summary",
            fewest=min(job_counts),
            median=format_milli(int(middle * 1000), lang),
            most=max(job_counts),
        )
    chose = session.execute(
        select(Member.id, Member.name)
        .where(Member.id.in_(riders), Member.public_name.is_(True), Member.active.is_(True), IS_MEMBER)
    ).all()  # fmt: skip
    named = sorted((name, offers.get(number, 0), jobs.get(number, 0)) for number, name in chose)
    return Fairness(
        named=named,
        period=label,
        riders=len(riders),
        offers=sum(offer_counts),
        jobs=sum(job_counts),
        offers_spread=sorted(Counter(offer_counts).items()),
        jobs_spread=sorted(Counter(job_counts).items()),
        jobs_summary=summary,
    )


# --- the audit log ----------------------------------------------------------------------


def audit_lines(session: Session, config: Config, lang: str, limit: int = AUDIT_LINES) -> list[str]:
    """The latest privileged actions, oldest first as `/audit` lists them, people by number."""
    entries = audit_trail.recent(session, limit=limit)
    people = {number: public_name(member, lang) for number, member in audit_trail.people(session, entries).items()}
    return [audit_line(config, lang, entry, people) for entry in entries]


def _is_action_entry(raw: dict[str, Any]) -> bool:
    """An entry about a binding action (removing a member), whose value or title may name them."""
    sets = raw.get("sets")
    key = str(sets).partition("=")[0] if isinstance(sets, str) else str(raw.get("key", ""))
    entry = settings.GOVERNED.get(key)
    return entry is not None and entry.action is not None


def audit_line(config: Config, lang: str, entry: AuditEntry, people: dict[int, str]) -> str:
    """`2026-11-02 09:00 · member #3: changed “offer policy” from … (vote P-2)`, in `/audit`'s words."""
    when = entry.at.astimezone(config.coop.tz).strftime("%Y-%m-%d %H:%M")
    actor = people.get(entry.actor_id, "?") if entry.actor_id else t(lang, "data.the_bot")
    subject = people.get(entry.subject_id, "?") if entry.subject_id else "—"
    raw = dict(entry.details or {})
    hidden = {"sets", "value", "title"} if _is_action_entry(raw) else set()
    setting = str(raw["key"]) if entry.action.startswith("setting.") and "key" in raw else None
    details = {k: _value(config, lang, k, v, setting) for k, v in raw.items() if k in SHOWN_DETAILS and k not in hidden}
    key = "data.action." + entry.action.replace(".", "_")
    template = catalogue(lang).get(key) or catalogue("en").get(key)
    if template is None:
        used: set[str] = set()
        sentence = entry.action
    else:
        used = placeholders(template)
        params = {name: details.get(name, "—") for name in used} | {"subject": subject}
        sentence = render(lang, template, **params)
    rest = [t(lang, "data.audit_detail", name=k, value=v) for k, v in details.items() if k not in used and v != "—"]
    line = t(lang, "data.audit_line", when=when, actor=actor, action=sentence)
    return t(lang, "data.audit_details", action=line, details=", ".join(rest)) if rest else line


def _value(config: Config, lang: str, key: str, value: Any, setting: str | None) -> str:
    """A detail as `/audit` shows it: money in the currency, settings and roles in words."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return t(lang, "data.yes") if value else t(lang, "data.no")
    currency = config.coop.currency
    if setting is not None and key in ("old", "new", "value"):
        return settings.describe(setting, str(value), lang, currency)
    if key == "sets" and isinstance(value, str) and "=" in value:
        name, _, given = value.partition("=")
        return t(lang, "data.audit_sets", key=name, value=settings.describe(name, given, lang, currency))
    if key.endswith("_cents") and isinstance(value, int):
        return format_money(value, currency, lang)
    if key == "points_milli" and isinstance(value, int):
        return t(lang, "ledger.points", points=format_milli(value, lang))
    if key in ("role", "old", "new", "target") and value in tuple(Role):
        return t(lang, f"roles.{value}")
    if key in VOCABULARIES:
        return term(lang, VOCABULARIES[key], value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
