"""The public page's contents: the co-op's rules, decisions, money and fairness, for anyone.

A gig platform hides who gets the next job and how the money is split; this
co-op publishes them. Which sections are public is itself a co-op rule
(`public.rules`, `public.polls`, `public.periods`, `public.fairness`,
`public.audit`, governed settings that a vote may turn off), read afresh for
every page.

Every sentence here is one the members already read in chat (settings'
words, `/prices`, poll results, the period summary, `/audit`): the page says
the same thing to the public, in the same words, minus anything personal.
It names no member (see `names`), shows no vote of anyone and no customer's
order. Only reads: a page view never writes to the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from babel.dates import format_date
from babel.lists import format_list
from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.i18n import t, term
from coopbot.models import Poll, Setting
from coopbot.services.dispatch import price_rules
from coopbot.services.polls import settings
from coopbot.services.polls.texts import code, is_action, result_text
from coopbot.services.public import records
from coopbot.services.public.periods import PeriodFigures, closed_periods
from coopbot.states import PollStatus

#: Each section of the page and the setting that makes it public.
SECTIONS = {
    "rules": "public.rules",
    "polls": "public.polls",
    "periods": "public.periods",
    "fairness": "public.fairness",
    "audit": "public.audit",
}
#: The co-op's rules as the page lists them, before the price rules and the weights.
RULE_KEYS = (
    "offer_policy",
    "offer_timeout",
    "prefer_on_duty",
    "unpopular_slots",
    "fill_policy",
    "block_vetoes",
    "legal_reserve_pct",
    "development_fund_pct",
    "dividend_pct",
    "equity_threshold",
    "base_pay_per_hour",
    "base_pay_per_delivery",
)
CLOSED_POLLS = 20


@dataclass(frozen=True)
class Rule:
    """One rule in force: what it is, its value, and where it comes from (the vote, if any)."""

    key: str
    label: str
    value: str
    source: str
    #: The polls that set it, for a link to their results.
    polls: tuple[int, ...] = ()


@dataclass(frozen=True)
class ClosedPoll:
    poll_id: int
    #: The result as announced at the close: heading first, counts and turnout, never a name.
    lines: tuple[str, ...]


@dataclass
class Page:
    lang: str
    coop: str
    #: Section name → whether the co-op made it public.
    shown: dict[str, bool]
    rules: list[Rule] = field(default_factory=list)
    prices: list[str] = field(default_factory=list)
    polls: list[ClosedPoll] = field(default_factory=list)
    periods: list[PeriodFigures] = field(default_factory=list)
    fairness: records.Fairness | None = None
    audit: list[str] = field(default_factory=list)


def sections_shown(
    session: Session, config: Config, now: datetime, in_force: settings.InForce | None = None
) -> dict[str, bool]:
    """Which sections the co-op publishes now: each is on until a binding vote turns it off.

    `in_force`: the settings already read, if the caller has them (one query for all five)."""
    values = in_force or settings.in_force(session, config, now)
    return {name: values.value(key) == "true" for name, key in SECTIONS.items()}


def read_page(session: Session, config: Config, now: datetime, lang: str) -> Page:
    """Everything the public page shows now, in `lang`; a section turned off is not even read.

    The settings are read once, for the sections and the rules alike."""
    values = settings.in_force(session, config, now)
    shown = sections_shown(session, config, now, values)
    page = Page(lang=lang, coop=config.coop.name, shown=shown)
    if shown["rules"]:
        page.rules = rules_in_force(session, config, now, lang, values)
        in_force = price_rules.in_force(session, config, now)
        page.prices = price_rules.prices_text(lang, in_force, config.coop.currency).split("\n")
    if shown["polls"]:
        page.polls = closed_polls(session, config, lang)
    if shown["periods"]:
        page.periods = closed_periods(session, config, lang)
    if shown["fairness"]:
        page.fairness = records.fairness(session, config, now, lang)
    if shown["audit"]:
        page.audit = records.audit_lines(session, config, lang)
    return page


# --- the rules in force ---------------------------------------------------------------


def _date(lang: str, moment: datetime, config: Config) -> str:
    return format_date(moment.astimezone(config.coop.tz).date(), format=t(lang, "prices.date_format"), locale=lang)


def _source(lang: str, config: Config, rows: list[Setting | None]) -> str:
    """'vote P-7 of 2026-11-12', 'set on …', or 'the co-op's configuration': `/prices`' words."""
    sources: list[str] = []
    for row in rows:
        if row is None:
            text = t(lang, "prices.source_config")
        elif row.poll_id is not None:
            text = t(lang, "prices.source_vote", poll=code(row.poll_id), date=_date(lang, row.effective_at, config))
        else:
            text = t(lang, "prices.source_set", date=_date(lang, row.effective_at, config))
        if text not in sources:
            sources.append(text)
    return format_list(sources, locale=lang)


def rules_in_force(
    session: Session, config: Config, now: datetime, lang: str, in_force: settings.InForce | None = None
) -> list[Rule]:
    """Each governed rule with its value in force and the vote behind it (the price rules
    are `/prices`' own text, and the page's sections are listed with their own setting).

    Every value comes from one read of the settings (`in_force`, read here if not given)."""
    values = in_force or settings.in_force(session, config, now)
    kinds = set(config.weights) | {
        key.removeprefix(settings.WEIGHT_PREFIX) for key in values.rows if key.startswith(settings.WEIGHT_PREFIX)
    }
    keys = [*RULE_KEYS, *(f"{settings.WEIGHT_PREFIX}{kind}" for kind in sorted(kinds)), *settings.PUBLIC_KEYS]
    rules = []
    for key in keys:
        behind = settings.PCT_KEYS if key == "dividend_pct" else (key,)
        rows = [values.row(name) for name in behind]
        value = values.value(key)
        rules.append(
            Rule(
                key=key,
                label=term(lang, "settings.label", key),
                value=settings.describe(key, value, lang, config.coop.currency),
                source=_source(lang, config, rows),
                polls=tuple(row.poll_id for row in rows if row is not None and row.poll_id is not None),
            )
        )
    return rules


# --- the polls closed ------------------------------------------------------------------


def closed_polls(session: Session, config: Config, lang: str, limit: int = CLOSED_POLLS) -> list[ClosedPoll]:
    """The latest closed polls with their result and turnout, as announced at the close.

    A result never names a voter (`result_text` counts only). A poll that
    removes a member is headed by what it does, not by its title, which may
    name the member it was about.
    """
    polls = session.scalars(
        select(Poll)
        .where(Poll.status == PollStatus.CLOSED)
        .order_by(Poll.closed_at.desc(), Poll.id.desc())
        .limit(limit)
    )
    shown = []
    for poll in polls:
        lines = result_text(session, config, poll, lang).split("\n")
        if poll.sets_key and is_action(poll.sets_key):
            title = term(lang, "settings.label", poll.sets_key)
            whom = poll.sets_value or ""
            lines = [
                t(lang, "polls.result_head", poll=code(poll), title=title),
                *(line for line in lines[1:] if not whom or whom not in line),
            ]
        shown.append(ClosedPoll(poll.id, tuple(lines)))
    return shown
