"""Polls in chat: propose, vote, list, read results, close early.

`/propose` reads like a sentence followed by options, the way people write
on a phone: `/propose Raise the reserve to 20%? --closes 3d --sets
legal_reserve_pct=20`, or, ranked, `/propose Where is the AGM? --ranked
"Salle A" "Salle B" "Online"`. Phones turn `--` into a dash, so a dash before
an option name counts too. Answers that show a member's own vote go to their
private chat.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from coopbot.chat import Outgoing
from coopbot.errors import NotAllowed, UsageError
from coopbot.models import Member, Poll
from coopbot.services.members.accounts import find_member, identity_of
from coopbot.services.polls import colleges, counting, proxies
from coopbot.services.polls import voting as svc
from coopbot.services.polls.ranked_texts import full_lines
from coopbot.services.polls.texts import (
    ballot_message,
    buttons,
    choice_label,
    chosen_text,
    closes_line,
    code,
    counts_lines,
    result_text,
    turnout_line,
)
from coopbot.services.refs import echo, small_number
from coopbot.states import PollStatus
from handlers.registry import Context, Reply, command

FLAGS = {"--multiple": "multiple", "--secret": "secret", "--live": "live"}
VALUED = ("--options", "--closes", "--quorum", "--threshold", "--sets", "--spend", "--to", "--ranked", "--seats")
OPTION_START = re.compile(r"(?:^|\s)--[a-z]")
PHONE_DASH = re.compile(r"(^|\s)[—–](?=[a-z])")
UNITS = {
    "w": 604800, "week": 604800, "weeks": 604800, "semaine": 604800, "semaines": 604800,
    "d": 86400, "day": 86400, "days": 86400, "j": 86400, "jour": 86400, "jours": 86400,
    "h": 3600, "hour": 3600, "hours": 3600, "heure": 3600, "heures": 3600,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
}  # fmt: skip
DURATION_PART = re.compile(r"([0-9]{1,9})\s*([a-z]+)")
DATE_TIME = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[ t]+([0-9]{1,2})(?:[:h]([0-9]{2})?)?)?$")
CLOCK = re.compile(r"^([0-9]{1,2})[:h]([0-9]{2})?$")
#: `/vote P-9 agree for Dan` (`pour Dan`): the vote a member holds by proxy.
FOR_WORDS = ("for", "pour")


# --- reading /propose ----------------------------------------------------------------


def parse_closes(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    """`3d`, `36h`, `1d 12h`, `2026-12-01 18:00` (co-op time), `2026-12-01` (end of day), `18:00`."""
    value = text.strip().lower()
    compact = value.replace(" ", "")
    parts = DURATION_PART.findall(value)
    if parts and "".join(f"{n}{u}" for n, u in parts) == compact and all(u in UNITS for _, u in parts):
        seconds = sum(int(number) * UNITS[unit] for number, unit in parts)
        return now + timedelta(seconds=min(seconds, 10**9))
    local_now = now.astimezone(tz)
    try:
        if found := DATE_TIME.match(value):
            year, month, day, hour, minute = found.groups()
            moment = datetime(int(year), int(month), int(day), 23, 59, tzinfo=tz)
            if hour is not None:
                moment = moment.replace(hour=int(hour), minute=int(minute or 0))
            return moment.astimezone(UTC)
        if found := CLOCK.match(value):
            moment = local_now.replace(
                hour=int(found.group(1)), minute=int(found.group(2) or 0), second=0, microsecond=0
            )
            if moment <= local_now:
                moment += timedelta(days=1)
            return moment.astimezone(UTC)
    except ValueError:
        pass
    raise UsageError("polls.bad_closes", value=text[:40], tz=str(tz))


def parse_pct(option: str, text: str) -> int:
    value = small_number(text.strip().removesuffix("%").strip())
    if value is None or not 0 <= value <= 100:
        raise UsageError("polls.bad_pct", option=option, value=echo(text))
    return value


def split_options(tail: str) -> list[str]:
    try:
        return shlex.split(tail)
    except ValueError:
        raise UsageError("polls.unbalanced_quotes") from None


def parse_propose(rest: str, now: datetime, tz: ZoneInfo) -> svc.PollSpec:
    """The question, then `--options`, `--multiple`, `--secret`, `--live`, `--quorum`,
    `--threshold`, `--closes`, `--sets`, `--spend` (with `--to`), in any order.

    A spending is the binding action `spend` (`services.money.funds`), so
    `--spend 3200.00 from development_fund --to "Vélos Dupont"` is read as
    `--sets spend=3200.00 from development_fund to Vélos Dupont`."""
    rest = PHONE_DASH.sub(r"\1--", rest)
    found = OPTION_START.search(rest)
    title, tail = (rest[: found.start()], rest[found.start() :]) if found else (rest, "")
    spec = svc.PollSpec(title=title.strip(), options=[])
    seen: set[str] = set()
    spending: dict[str, str] = {}
    tokens = split_options(tail)
    index = 0
    while index < len(tokens):
        name = tokens[index].lower()
        index += 1
        if name in seen:
            raise UsageError("polls.repeated_option", option=name)
        seen.add(name)
        if name in FLAGS:
            setattr(spec, FLAGS[name], True)
            continue
        if name not in VALUED:
            raise UsageError("polls.unknown_option", option=name[:30])
        words: list[str] = []
        while index < len(tokens) and not tokens[index].startswith("--"):
            words.append(tokens[index])
            index += 1
        if not words:
            raise UsageError("polls.option_needs_value", option=name)
        value = " ".join(words)
        if name == "--options":
            spec.options = value.split("|")
        elif name == "--closes":
            spec.closes_at = parse_closes(value, now, tz)
        elif name == "--quorum":
            spec.quorum_pct = parse_pct(name, value)
        elif name == "--threshold":
            spec.threshold_pct = parse_pct(name, value)
        elif name == "--ranked":
            spec.ranked = words[0].split("|") if len(words) == 1 else words
        elif name == "--seats":
            spec.seats = parse_seats(value)
        elif name in ("--spend", "--to"):
            spending[name] = value
        else:
            spec.sets = value
    if spending:
        spec.sets = spending_as_setting(spending, spec.sets)
    return spec


def parse_seats(text: str) -> int:
    seats = small_number(text.strip())
    if seats is None or seats < 1:
        raise UsageError("polls.bad_seats", most=svc.MAX_OPTIONS - 1)
    return seats


def spending_as_setting(spending: dict[str, str], sets: str | None) -> str:
    if "--spend" not in spending:
        raise UsageError("funds.to_needs_spend")
    if sets is not None:
        raise UsageError("funds.spend_and_sets")
    payee = spending.get("--to")
    return f"spend={spending['--spend']}" + (f" to {payee}" if payee else "")


# --- commands -----------------------------------------------------------------------


def voter(ctx: Context) -> Member:
    """Only active members vote; strangers and former members are told why."""
    if ctx.member is not None:
        return ctx.member
    identity = identity_of(ctx.session, ctx.incoming.platform, ctx.incoming.user_id)
    if identity is not None and not identity.member.active:
        raise NotAllowed("polls.former_member")
    raise NotAllowed("polls.not_member", coop=ctx.config.coop.name)


@command("propose", area="polls", aliases=("proposer",))
def propose(ctx: Context) -> Reply:
    if not ctx.rest.strip():
        raise ctx.usage()
    spec = parse_propose(ctx.rest, ctx.now, ctx.config.coop.tz)
    poll = svc.create(ctx.session, ctx.config, ctx.me, spec, ctx.now)
    return ctx.t(
        "polls.created",
        poll=code(poll),
        closes=closes_line(ctx.config, poll, ctx.lang, ctx.now),
        count=len(colleges.electorate(ctx.session, ctx.config)),
    )


def split_for(text: str) -> tuple[str, str | None]:
    """`agree for Dan` → ("agree", "Dan"): the vote a member casts by proxy, and for whom.
    The last `for`/`pour` followed by a name counts, so `pour pour Dan` is agree for Dan."""
    words = text.split()
    marks = [i for i, word in enumerate(words[:-1]) if word.casefold() in FOR_WORDS]
    if not marks:
        return text.strip(), None
    return " ".join(words[: marks[-1]]), " ".join(words[marks[-1] + 1 :])


@command("vote", area="polls", role=None, aliases=("voter",))
def vote(ctx: Context) -> Reply:
    member = voter(ctx)
    if not ctx.args:
        raise ctx.usage()
    ref = ctx.args[0]
    choice, whom = split_for(" ".join(ctx.args[1:]))
    giver = find_member(ctx.session, whom) if whom is not None else None
    owner = giver or member
    if not choice:
        poll = svc.get(ctx.session, ref)
        if poll.status != PollStatus.OPEN:
            return result_reply(ctx, poll)
        if giver is not None:
            proxies.check_holder(ctx.session, poll, member, giver)
        chosen = svc.own_choices(ctx.session, ctx.config, poll, owner)
        holding = proxies.givers_for(ctx.session, member, poll) if giver is None else []
        ballot = ballot_message(ctx.session, ctx.config, poll, ctx.lang, ctx.now, chosen, giver=giver,
                                holding=holding)  # fmt: skip
        return Outgoing(ballot.text, ballot.buttons, private=not ctx.incoming.is_private)
    poll, choices = svc.vote(ctx.session, ctx.config, member, ref, choice, ctx.now, giver=giver)
    text = ctx.t(
        "polls.voted_for" if giver is not None else "polls.voted",
        poll=code(poll),
        choice=chosen_text(poll, ctx.lang, choices),
        closes=closes_line(ctx.config, poll, ctx.lang, ctx.now),
        name=owner.name,
    )
    keys = buttons(poll, ctx.lang, choices, f" for #{giver.id}" if giver is not None else "")
    return Outgoing(text, keys if poll.status == PollStatus.OPEN else (), private=not ctx.incoming.is_private)


@command("polls", area="polls", private=True, aliases=("sondages",))
def polls(ctx: Context) -> Reply:
    open_now = svc.open_polls(ctx.session)
    if not open_now:
        return ctx.t("polls.list_empty")
    lines = [ctx.t("polls.list_title", count=len(open_now))]
    for poll in open_now:
        voted = ctx.me.id in svc.voter_ids(ctx.session, poll)
        status = ctx.t("polls.status_voted") if voted else ctx.t("polls.status_not_voted", poll=code(poll))
        closes = closes_line(ctx.config, poll, ctx.lang, ctx.now)
        lines.append(ctx.t("polls.list_line", poll=code(poll), title=poll.title, closes=closes, status=status))
    return "\n".join(lines)


@command("results", area="polls", aliases=("resultats",))
def results(ctx: Context) -> Reply:
    args = ctx.expect_args(1, 2)
    if len(args) == 2 and args[1].casefold() not in ("full", "complet", "détail", "detail"):
        raise ctx.usage()
    poll = svc.get(ctx.session, args[0])
    if len(args) == 2:
        return "\n".join(full_lines(poll, ctx.lang))
    return result_reply(ctx, poll)


def result_reply(ctx: Context, poll: Poll) -> str:
    if poll.status != PollStatus.OPEN:
        lines = [result_text(ctx.session, ctx.config, poll, ctx.lang)]
        if not poll.secret:
            lines += names_lines(ctx, poll)
        return "\n".join(lines)
    active = colleges.electorate(ctx.session, ctx.config)
    voted = svc.voter_ids(ctx.session, poll) & {m.id for m in active}
    closes = closes_line(ctx.config, poll, ctx.lang, ctx.now)
    lines = [ctx.t("polls.results_open", poll=code(poll), title=poll.title, closes=closes)]
    lines.append(turnout_line(ctx.lang, len(voted), len(active), poll.quorum_pct))
    if poll.live_results and not poll.secret:
        so_far = counting.tally(poll, counting.ballots_of(ctx.session, ctx.config, poll, active))
        lines += counts_lines(poll, ctx.lang, so_far.counts)
        lines += names_lines(ctx, poll)
    else:
        lines.append(ctx.t("polls.results_at_close"))
    return "\n".join(lines)


def names_lines(ctx: Context, poll: Poll) -> list[str]:
    """Who chose what, for open (non-secret) polls only (`voting.public_votes` keeps that rule)."""
    return [
        ctx.t("polls.names_line", choice=choice_label(poll, ctx.lang, key), names=", ".join(names))
        for key, names in svc.public_votes(ctx.session, poll).items()
    ]


@command("closepoll", area="polls", aliases=("cloturer",))
def closepoll(ctx: Context) -> Reply:
    ref = ctx.expect_args(1, 1)[0]
    poll = svc.close_early(ctx.session, ctx.config, ctx.me, ref, ctx.now)
    return ctx.t("polls.closed_now", poll=code(poll))
