"""Polls: one member, one vote, and decisions that bind the co-op.

A ballot belongs to the member, never to an account, so someone talking from
Telegram and Matrix has one vote; the latest counts until the close. Secret
polls keep *that* a member voted (`Voter`) apart from *what*: every ballot
of the poll sits in one box sealed under the poll's own key, rewritten whole
at each vote, and at the close only the tally is kept and the key destroyed
(`ballot_box` says why this shape). Nothing here logs a choice.

The close is a conditional UPDATE checked by rowcount: two processes, or a
restart, racing for it close the poll once. The tally, the binding setting
and the result messages for every member go in that same transaction.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.errors import Conflict, CoopError, NotAllowed, NotFound, UsageError
from coopbot.i18n import t
from coopbot.models import Member, Poll, Vote, Voter
from coopbot.outbox import queue_to_member
from coopbot.scheduler import SweepContext, sweep
from coopbot.services.audit import record
from coopbot.services.members.accounts import at_least, language_of
from coopbot.services.polls import ballot_box, colleges, native, proxies, settings
from coopbot.services.polls.counting import ballots_by_member, choice_keys, decide, decide_ranked, tally
from coopbot.services.polls.texts import PROPOSAL_CHOICES, ballot_message, closes_line, code, result_text
from coopbot.services.refs import POLL, parse_code, small_number
from coopbot.services.text import tidy, visible
from coopbot.states import PollStatus, Role

log = logging.getLogger(__name__)

CHOICE_WORDS = {
    "agree": "agree", "yes": "agree", "for": "agree", "oui": "agree", "pour": "agree",
    "d'accord": "agree", "accord": "agree", "abstain": "abstain", "abstention": "abstain",
    "abstiens": "abstain", "disagree": "disagree", "no": "disagree", "against": "disagree",
    "non": "disagree", "contre": "disagree", "block": "block", "veto": "block",
    "bloque": "block", "bloquer": "block", "blocage": "block",
}  # fmt: skip
MAX_OPTIONS = 10
MAX_TITLE = 300
MAX_OPTION = 100
MIN_DURATION = timedelta(minutes=5)
MAX_DURATION = timedelta(days=365)


@dataclass
class PollSpec:
    """What `/propose` asked for, before the co-op's defaults fill the gaps."""

    title: str
    options: list[str]
    multiple: bool = False
    secret: bool = False
    live: bool = False
    quorum_pct: int | None = None
    threshold_pct: int | None = None
    closes_at: datetime | None = None
    sets: str | None = None
    #: A ranked poll's options (`--ranked "Salle A" "Salle B"`), and how many of them win.
    ranked: list[str] | None = None
    seats: int | None = None


def parse_ref(text: str) -> int:
    return parse_code(text, POLL)


def get(session: Session, ref: str, *, lock: bool = False) -> Poll:
    poll_id = parse_ref(ref)
    query = select(Poll).where(Poll.id == poll_id).execution_options(populate_existing=True)
    poll = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if poll is None:
        raise NotFound("polls.no_such_poll", poll=code(poll_id))
    return poll


# --- proposing ----------------------------------------------------------------


def _check_options(options: list[str]) -> list[str]:
    """The options as typed, tidied; one that shows nothing on screen is refused by its number."""
    cleaned = [tidy(option) for option in options]
    for number, option in enumerate(cleaned, 1):
        if not visible(option):
            raise UsageError("polls.option_empty", number=number)
    if len(cleaned) < 2:
        raise UsageError("polls.too_few_options")
    if len(cleaned) > MAX_OPTIONS:
        raise UsageError("polls.too_many_options", most=MAX_OPTIONS)
    if len({visible(option).casefold() for option in cleaned}) != len(cleaned):
        raise UsageError("polls.duplicate_option")
    if any(len(option) > MAX_OPTION for option in cleaned):
        raise UsageError("polls.option_too_long", most=MAX_OPTION)
    return cleaned


def _check_ranked(spec: PollSpec, options: list[str]) -> list[str]:
    """A ranked poll: its own options, more of them than seats, nothing it cannot count."""
    if options or spec.multiple:
        raise UsageError("polls.ranked_alone")
    if spec.sets is not None:
        raise UsageError("polls.sets_needs_proposal")
    if spec.live:
        raise UsageError("polls.ranked_not_live")
    ranked = _check_options(spec.ranked or [])
    seats = spec.seats or 1
    if not 1 <= seats < len(ranked):
        raise UsageError("polls.bad_seats", most=len(ranked) - 1)
    return ranked


def create(session: Session, config: Config, proposer: Member, spec: PollSpec, now: datetime) -> Poll:
    """Open a poll, send every active member a ballot, tell the rooms."""
    title = tidy(spec.title)
    if not visible(title):
        raise UsageError("polls.title_invisible" if title else "polls.title_missing")
    if len(title) > MAX_TITLE:
        raise UsageError("polls.title_too_long", most=MAX_TITLE)
    options = _check_options(spec.options) if spec.options else []
    if spec.multiple and not options:
        raise UsageError("polls.multiple_needs_options")
    if spec.ranked is not None:
        if colleges.enabled(config):
            raise UsageError("colleges.no_ranked")
        options = _check_ranked(spec, options)
    if spec.secret and spec.live:
        raise UsageError("polls.secret_not_live")
    sets_key = sets_value = None
    if spec.sets is not None:
        if options:
            raise UsageError("polls.sets_needs_proposal")
        key, equals, value = spec.sets.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise UsageError("polls.sets_usage")
        # Who may propose it first: a member who may not learns that, not whether a member can be removed.
        if settings.is_restricted(config, key) and not at_least(proposer, Role.COORDINATOR):
            raise NotAllowed("polls.restricted_setting", setting=settings.governed(key).key)
        # The same gate as at the close (`settings.apply`): what passes here can be applied then.
        sets_key, sets_value = settings.validate(session, config, key, value, now)
    closes_at = spec.closes_at or now + timedelta(hours=config.polls.default_duration_hours)
    if closes_at < now + MIN_DURATION:
        raise UsageError("polls.closes_too_soon", minutes=int(MIN_DURATION.total_seconds() // 60))
    if closes_at > now + MAX_DURATION:
        raise UsageError("polls.closes_too_far", days=MAX_DURATION.days)
    kind = "ranked" if spec.ranked is not None else "multiple" if spec.multiple else "single" if options else "proposal"
    default_threshold = round(config.polls.threshold_pct) if kind == "proposal" else 0
    poll = Poll(
        title=title,
        kind=kind,
        options=options,
        secret=spec.secret,
        live_results=spec.live,
        quorum_pct=spec.quorum_pct if spec.quorum_pct is not None else round(config.polls.quorum_pct),
        threshold_pct=spec.threshold_pct if spec.threshold_pct is not None else default_threshold,
        proposer_id=proposer.id,
        created_at=now,
        closes_at=closes_at,
        status=PollStatus.OPEN,
        sets_key=sets_key,
        sets_value=sets_value,
        seats=(spec.seats or 1) if kind == "ranked" else None,
        result={},
    )
    session.add(poll)
    session.flush()
    record(
        session,
        now,
        "poll.created",
        actor=proposer,
        poll=code(poll),
        kind=kind,
        title=title,
        secret=poll.secret,
        sets=f"{sets_key}={sets_value}" if sets_key else None,
    )
    held = proxies.holdings(session, poll)
    for member in colleges.electorate(session, config):
        message = ballot_message(session, config, poll, language_of(config, member), now,
                                 holding=held.get(member.id, ()))  # fmt: skip
        queue_to_member(session, member, f"poll:{poll.id}:ballot:m{member.id}", message, now)
    native.queue_announcement(session, config, poll, now)
    return poll


# --- voting -------------------------------------------------------------------------


def parse_choices(poll: Poll, text: str) -> list[Any]:
    """`agree`, `2`, `1,3` → what the ballot stores; a clear refusal otherwise."""
    words = [word for word in re.split(r"[\s,;]+", text.strip().lower()) if word]
    if poll.kind == "proposal":
        if len(words) != 1:
            raise UsageError("polls.bad_proposal_choice", poll=code(poll))
        word = words[0]
        number = small_number(word)
        if number is not None and 1 <= number <= len(PROPOSAL_CHOICES):
            return [PROPOSAL_CHOICES[number - 1]]
        if word not in CHOICE_WORDS:
            raise UsageError("polls.bad_proposal_choice", poll=code(poll))
        return [CHOICE_WORDS[word]]
    if poll.kind == "ranked":
        return parse_ranking(poll, words)
    numbers = []
    for word in words:
        number = small_number(word.removeprefix("#"))
        if number is None or not 1 <= number <= len(poll.options):
            raise UsageError("polls.bad_option", poll=code(poll), most=len(poll.options))
        numbers.append(number)
    if not numbers:
        raise UsageError("polls.bad_option", poll=code(poll), most=len(poll.options))
    if poll.kind == "single" and len(set(numbers)) > 1:
        raise UsageError("polls.one_option_only", poll=code(poll))
    return sorted(set(numbers))


def parse_ranking(poll: Poll, words: list[str]) -> list[Any]:
    """`3,1,2`: option 3 first, then 1, then 2; a partial ranking is allowed, a repeat is not."""
    numbers = []
    for word in words:
        number = small_number(word.removeprefix("#").removeprefix("+"))
        if number is None or not 1 <= number <= len(poll.options):
            raise UsageError("polls.bad_option", poll=code(poll), most=len(poll.options))
        if number in numbers:
            raise UsageError("polls.rank_repeated", poll=code(poll), option=number)
        numbers.append(number)
    if not numbers:
        raise UsageError("polls.bad_option", poll=code(poll), most=len(poll.options))
    return numbers


def pressed(poll: Poll, before: list[Any], choices: list[Any]) -> list[Any]:
    """A button pressed (`+N`): a multiple poll toggles N; a ranked poll ranks N next, or,
    pressed again, takes it out (the ranks after it move up)."""
    if poll.kind == "multiple":
        return sorted(set(before) ^ set(choices))
    ranking = [int(choice) for choice in before]
    for number in choices:
        ranking = [n for n in ranking if n != number] if number in ranking else [*ranking, number]
    return ranking


def own_choices(session: Session, config: Config, poll: Poll, member: Member) -> list[Any] | None:
    """What this member chose (shown only to them), or None if they have not voted."""
    if poll.secret:
        return ballot_box.read(session, config, poll).get(member.id)
    vote_row = session.scalars(select(Vote).where(Vote.poll_id == poll.id, Vote.member_id == member.id)).one_or_none()
    return list(vote_row.choices) if vote_row is not None else None


def vote(
    session: Session,
    config: Config,
    member: Member,
    ref: str,
    text: str,
    now: datetime,
    *,
    giver: Member | None = None,
) -> tuple[Poll, list[Any]]:
    """Record (or change) a member's vote, or, with `giver`, the vote they hold by proxy;
    `+N` on a multiple poll toggles option N, on a ranked poll ranks it next."""
    poll = get(session, ref, lock=True)  # serialises votes and the close of this poll
    if not member.active:
        raise NotAllowed("polls.former_member")
    if not colleges.may_vote(config, member):
        raise NotAllowed("customers.no_vote")  # a customer is not a member: one member, one vote
    if poll.status != PollStatus.OPEN or now >= poll.closes_at:
        raise Conflict("polls.closed", poll=code(poll))
    if giver is not None:
        proxies.check_holder(session, poll, member, giver)
    owner = giver or member
    choices = parse_choices(poll, text)
    if poll.kind in ("multiple", "ranked") and text.strip().startswith("+"):
        choices = pressed(poll, own_choices(session, config, poll, owner) or [], choices)
    if poll.secret:
        _store_secret(session, config, poll, owner, choices)
    else:
        row = session.scalars(select(Vote).where(Vote.poll_id == poll.id, Vote.member_id == owner.id)).one_or_none()
        if row is None:
            session.add(Vote(poll_id=poll.id, member_id=owner.id, choices=choices, at=now))
        else:
            row.choices, row.at = choices, now
    if giver is not None:
        proxies.used(session, config, poll, member, giver, now)
    else:
        proxies.voted_themselves(session, poll, member, now)
    session.flush()
    return poll, choices


def _store_secret(session: Session, config: Config, poll: Poll, member: Member, choices: list[Any]) -> None:
    """Reseal the poll's whole box: the write looks the same whoever votes and whatever they choose."""
    ballots = ballot_box.read(session, config, poll)
    ballots[member.id] = choices
    ballot_box.write(session, config, poll, ballots)
    voted = session.scalar(select(Voter.id).where(Voter.poll_id == poll.id, Voter.member_id == member.id))
    if voted is None:
        session.add(Voter(poll_id=poll.id, member_id=member.id))


def voter_ids(session: Session, poll: Poll) -> set[int]:
    table = Voter if poll.secret else Vote
    return set(session.scalars(select(table.member_id).where(table.poll_id == poll.id)))


def public_votes(session: Session, poll: Poll) -> dict[str, list[str]]:
    """Who chose what, for an open (non-secret) poll only: a secret poll names nobody here,
    whatever its tables hold. Choices in the ballot's order, each with its voters by name;
    a choice nobody made is left out."""
    if poll.secret:
        return {}
    names: dict[str, list[str]] = {key: [] for key in choice_keys(poll)}
    rows = session.execute(
        select(Vote.choices, Member.name)
        .join(Member, Member.id == Vote.member_id)
        .where(Vote.poll_id == poll.id)
        .order_by(Member.name)
    )
    for choices, name in rows:
        # A ranking names its voter under their first choice only: the rest is an order, not a choice.
        for choice in choices[:1] if poll.kind == "ranked" else choices:
            if str(choice) in names:
                names[str(choice)].append(name)
    return {key: voters for key, voters in names.items() if voters}


# --- closing -----------------------------------------------------------------------


def close(session: Session, config: Config, poll_id: int, now: datetime, *, actor: Member | None = None) -> bool:
    """Close once: tally, apply the binding setting, queue the results; False if already closed."""
    claimed = cast(
        CursorResult[Any],
        session.execute(
            update(Poll)
            .where(Poll.id == poll_id, Poll.status == PollStatus.OPEN)
            .values(status=PollStatus.CLOSED, closed_at=now)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if claimed != 1:
        return False
    poll = session.get_one(Poll, poll_id, populate_existing=True)
    active = colleges.electorate(session, config)
    block_vetoes = settings.current(session, config, "block_vetoes", now) == "true"
    ballots = ballots_by_member(session, config, poll, active)
    if poll.kind == "ranked":
        result = decide_ranked(poll, list(ballots.values()), len(active))
    elif colleges.enabled(config):
        per_college = settings.current(session, config, colleges.PER_COLLEGE_KEY, now) == "true"
        result = colleges.decide(poll, config, ballots, active, choice_keys(poll), block_vetoes, per_college)
    else:
        result = decide(poll, tally(poll, list(ballots.values())), len(active), block_vetoes)
    result["early"] = now < poll.closes_at
    result["by_proxy"] = proxies.by_proxy(session, poll, {member.id for member in active})
    if result["outcome"] == "passed" and poll.sets_key and poll.sets_value is not None:
        try:
            with session.begin_nested():
                result["applied"] = settings.apply(session, config, poll.sets_key, poll.sets_value, now, poll=poll)
        except CoopError as err:
            result["apply_error"] = {"key": err.key, "params": {k: _stored(v) for k, v in err.params.items()}}
    poll.result = result
    if poll.secret:
        ballot_box.destroy(session, config, poll)
    record(
        session,
        now,
        "poll.closed",
        actor=actor,
        poll=code(poll),
        outcome=result["outcome"],
        turnout=result["turnout"],
        active=result["active"],
    )
    for member in active:
        text = result_text(session, config, poll, language_of(config, member))
        queue_to_member(session, member, f"poll:{poll.id}:result:m{member.id}", Outgoing(text), now)
    native.queue_result(session, config, poll, now)
    log.info("poll %s closed: %s", code(poll), result["outcome"])
    return True


def _stored(value: Any) -> str | list[str]:
    """An error's parameter as JSON keeps it, to be said at each reading in the reader's language:
    a list (of setting keys, say) stays a list, so each item is named in words then."""
    return [str(item) for item in value] if isinstance(value, list | tuple) else str(value)


def close_early(session: Session, config: Config, member: Member, ref: str, now: datetime) -> Poll:
    """The proposer or a coordinator may close once every active member has voted."""
    poll = get(session, ref, lock=True)
    if poll.status != PollStatus.OPEN:
        raise Conflict("polls.already_closed", poll=code(poll))
    if poll.proposer_id != member.id and not at_least(member, Role.COORDINATOR):
        raise NotAllowed("polls.close_not_allowed", poll=code(poll))
    active = {m.id for m in colleges.electorate(session, config)}
    voted = voter_ids(session, poll) & active
    if voted != active:
        lang = language_of(config, member)
        raise Conflict(
            "polls.close_not_everyone",
            poll=code(poll),
            voted=len(voted),
            active=len(active),
            closes=closes_line(config, poll, lang, now),
        )
    close(session, config, poll.id, now, actor=member)
    return poll


def remind(session: Session, config: Config, poll_id: int, now: datetime) -> int:
    """Remind, once, the active members who have not voted; returns how many."""
    claimed = cast(
        CursorResult[Any],
        session.execute(
            update(Poll)
            .where(Poll.id == poll_id, Poll.status == PollStatus.OPEN, Poll.reminded_at.is_(None))
            .values(reminded_at=now)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if claimed != 1:
        return 0
    poll = session.get_one(Poll, poll_id, populate_existing=True)
    voted = voter_ids(session, poll)
    reminded = 0
    for member in colleges.electorate(session, config):
        if member.id in voted:
            continue
        lang = language_of(config, member)
        ballot = ballot_message(session, config, poll, lang, now)
        text = t(lang, "polls.reminder", poll=code(poll)) + "\n" + ballot.text
        queue_to_member(session, member, f"poll:{poll.id}:remind:m{member.id}", Outgoing(text, ballot.buttons), now)
        reminded += 1
    return reminded


def remind_at(config: Config, poll: Poll) -> datetime | None:
    """`reminder_hours` before the close, or halfway through a shorter poll; None if disabled."""
    if config.polls.reminder_hours <= 0:
        return None
    halfway = poll.created_at + (poll.closes_at - poll.created_at) / 2
    return max(halfway, poll.closes_at - timedelta(hours=config.polls.reminder_hours))


def open_polls(session: Session) -> list[Poll]:
    return list(session.scalars(select(Poll).where(Poll.status == PollStatus.OPEN).order_by(Poll.closes_at, Poll.id)))


@sweep("polls.close")
def close_due(ctx: SweepContext) -> None:
    """Deadline passed (or passed while the bot was down): close, each in its own transaction.

    A poll whose close fails rests and is retried; the polls after it close on time.
    """
    with ctx.sessions() as session:
        due = session.scalars(
            select(Poll.id)
            .where(Poll.status == PollStatus.OPEN, Poll.closes_at <= ctx.now)
            .order_by(Poll.closes_at, Poll.id)
        ).all()
    ctx.each(due, code, lambda session, poll_id: close(session, ctx.config, poll_id, ctx.now))


@sweep("polls.remind")
def remind_due(ctx: SweepContext) -> None:
    with ctx.sessions() as session:
        waiting = [
            poll.id
            for poll in session.scalars(
                select(Poll).where(Poll.status == PollStatus.OPEN, Poll.reminded_at.is_(None), Poll.closes_at > ctx.now)
            )
            if (when := remind_at(ctx.config, poll)) is not None and when <= ctx.now
        ]
    ctx.each(waiting, code, lambda session, poll_id: remind(session, ctx.config, poll_id, ctx.now))
