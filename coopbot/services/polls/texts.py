"""How polls read to members: ballots, buttons, deadlines and results.

Kept apart from the voting rules so that `voting` says what the co-op
decides and this module only how it is told. Every text is built in the
reader's language; results come from the tally stored at the close, so a
result reads the same today and in a year, and never names a secret voter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from coopbot.chat import Button, Outgoing
from coopbot.config import Config
from coopbot.i18n import FALLBACK, catalogue, t
from coopbot.models import Member, Poll
from coopbot.services.polls import settings

PROPOSAL_CHOICES = ("agree", "abstain", "disagree", "block")
EMOJI = {"agree": "👍", "abstain": "🤷", "disagree": "👎", "block": "✋"}
KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟")
#: The rank a ranked poll's button shows once the option is ranked.
RANKS = ("①", "②", "③", "④", "⑤", "⑥", "⑦", "⑧", "⑨", "⑩")
MAX_LABEL = 40
#: Settings frozen into each period at its start: a vote changes them from the next period.
PERIOD_KEYS = (
    "legal_reserve_pct",
    "development_fund_pct",
    "equity_threshold",
    "base_pay_per_hour",
    "base_pay_per_delivery",
)


def code(poll: Poll | int) -> str:
    return f"P-{poll if isinstance(poll, int) else poll.id}"


def local_time(config: Config, moment: datetime) -> str:
    return moment.astimezone(config.coop.tz).strftime("%Y-%m-%d %H:%M")


def time_left(lang: str, now: datetime, moment: datetime) -> str:
    seconds = max(0, int((moment - now).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return t(lang, "polls.left_days", days=days, hours=hours)
    if hours:
        return t(lang, "polls.left_hours", hours=hours, minutes=rest // 60)
    return t(lang, "polls.left_minutes", minutes=max(1, rest // 60))


def closes_line(config: Config, poll: Poll, lang: str, now: datetime) -> str:
    return t(lang, "polls.closes", when=local_time(config, poll.closes_at), left=time_left(lang, now, poll.closes_at))


def choice_label(poll: Poll, lang: str, choice: Any) -> str:
    if poll.kind == "proposal":
        return t(lang, f"polls.choice.{choice}")
    number = int(choice)
    return f"{number}. {poll.options[number - 1]}"


def chosen_text(poll: Poll, lang: str, choices: list[Any]) -> str:
    if not choices:
        return t(lang, "polls.nothing_chosen")
    if poll.kind == "ranked":
        return " > ".join(poll.options[int(choice) - 1] for choice in choices)
    return ", ".join(choice_label(poll, lang, choice) for choice in choices)


def buttons(poll: Poll, lang: str, chosen: list[Any] | None = None, suffix: str = "") -> tuple[Button, ...]:
    """One button per choice (a reaction on Matrix); the member's current choice is ticked.
    `suffix` (` for #4`) makes them cast the vote a member holds by proxy."""
    picked = {str(choice) for choice in chosen or []}
    made = []
    if poll.kind == "proposal":
        for choice in PROPOSAL_CHOICES:
            label = t(lang, f"polls.choice.{choice}")
            tick = "✓ " if choice in picked else ""
            made.append(Button(tick + label, f"/vote {code(poll)} {choice}{suffix}", EMOJI[choice]))
        return tuple(made)
    toggle = "+" if poll.kind in ("multiple", "ranked") else ""
    ranks = [int(choice) for choice in chosen or []] if poll.kind == "ranked" else []
    for number, option in enumerate(poll.options, start=1):
        tick = "✓ " if str(number) in picked else ""
        if ranks:
            tick = f"{RANKS[ranks.index(number)]} " if number in ranks else ""
        label = f"{tick}{number}. {option}"
        if len(label) > MAX_LABEL:
            label = label[: MAX_LABEL - 1] + "…"
        made.append(Button(label, f"/vote {code(poll)} {toggle}{number}{suffix}", KEYCAPS[number - 1]))
    return tuple(made)


def _value(config: Config, key: str, value: str, lang: str) -> str:
    return settings.describe(key, value, lang, config.coop.currency)


def action_text(lang: str, key: str, value: str, currency: str) -> str:
    """What a binding action does, in words ("remove the member #12"); one the catalogue
    does not know reads as typed (`key value`)."""
    entry = settings.GOVERNED.get(key)
    if entry is not None and entry.words is not None:
        return entry.words(lang, value, currency)
    sentence = f"settings.action.{key}"
    return t(lang, sentence, value=value) if sentence in catalogue(FALLBACK) else f"{key} {value}"


def sets_line(session: Session, config: Config, poll: Poll, lang: str, now: datetime) -> str:
    if not poll.sets_key or poll.sets_value is None:
        return ""
    key = poll.sets_key
    if is_action(key):
        return t(lang, "polls.ballot_action", action=action_text(lang, key, poll.sets_value, config.coop.currency))
    old = _value(config, key, settings.current(session, config, key, now), lang)
    new = _value(config, key, poll.sets_value, lang)
    return t(lang, "polls.ballot_sets", setting=key, old=old, new=new, when=applies_when(lang, key))


def is_action(key: str) -> bool:
    """A binding action (e.g. remove_member) has no value in force to show, only an effect."""
    entry = settings.GOVERNED.get(key)
    return entry is not None and entry.action is not None


def applies_when(lang: str, key: str) -> str:
    if key in PERIOD_KEYS or key.startswith(settings.WEIGHT_PREFIX):
        return t(lang, "polls.applies_next_period")
    return t(lang, "polls.applies_now")


def rules_line(session: Session, config: Config, poll: Poll, lang: str, now: datetime) -> str:
    if poll.kind == "ranked":
        method = t(lang, "polls.method_schulze" if (poll.seats or 1) == 1 else "polls.method_stv", seats=poll.seats)
        return t(lang, "polls.rules_ranked", quorum=poll.quorum_pct, method=method, poll=code(poll),
                 closes=local_time(config, poll.closes_at))  # fmt: skip
    if poll.kind == "proposal":
        vetoes = settings.current(session, config, "block_vetoes", now) == "true"
        block = t(lang, "polls.rules_block_vetoes" if vetoes else "polls.rules_block_recorded")
        return t(lang, "polls.rules_proposal", quorum=poll.quorum_pct, threshold=poll.threshold_pct) + " " + block
    if poll.threshold_pct:
        return t(lang, "polls.rules_choice_majority", quorum=poll.quorum_pct, threshold=poll.threshold_pct)
    return t(lang, "polls.rules_choice", quorum=poll.quorum_pct)


def ballot_message(
    session: Session,
    config: Config,
    poll: Poll,
    lang: str,
    now: datetime,
    chosen: list[Any] | None = None,
    *,
    giver: Member | None = None,
    holding: Sequence[Member] = (),
) -> Outgoing:
    """A member's ballot; with `giver`, the one they cast by proxy; `holding`: the votes they
    also hold, each with a button that opens its ballot."""
    proposer = session.get(Member, poll.proposer_id) if poll.proposer_id else None
    lines = [t(lang, "polls.ballot_head", poll=code(poll), name=proposer.name if proposer else "?", title=poll.title)]
    if giver is not None:
        lines.insert(0, t(lang, "polls.ballot_for", name=giver.name))
    lines += [f"{number}. {option}" for number, option in enumerate(poll.options, start=1)]
    if sets := sets_line(session, config, poll, lang, now):
        lines.append(sets)
    lines.append(closes_line(config, poll, lang, now))
    lines.append(rules_line(session, config, poll, lang, now))
    if poll.secret:
        lines.append(t(lang, "polls.ballot_secret"))
    how = {"proposal": "polls.how_proposal", "single": "polls.how_single", "multiple": "polls.how_multiple",
           "ranked": "polls.how_ranked"}  # fmt: skip
    lines.append(t(lang, how[poll.kind], poll=code(poll)))
    if chosen is not None:
        lines.append(t(lang, "polls.your_vote", choice=chosen_text(poll, lang, chosen)))
    suffix = f" for #{giver.id}" if giver is not None else ""
    keys = buttons(poll, lang, chosen, suffix)
    if holding:
        names = ", ".join(member.name for member in holding)
        lines.append(t(lang, "polls.holding", names=names, poll=code(poll), name=holding[0].name))
        keys += tuple(Button(t(lang, "polls.vote_for", name=m.name), f"/vote {code(poll)} for #{m.id}")
                      for m in holding)  # fmt: skip
    return Outgoing("\n".join(lines), keys)


def counts_lines(poll: Poll, lang: str, counts: dict[str, int]) -> list[str]:
    if poll.kind == "ranked":
        firsts = ", ".join(f"{option} {counts.get(str(n), 0)}" for n, option in enumerate(poll.options, start=1))
        return [t(lang, "polls.first_choices", counts=firsts)]
    if poll.kind == "proposal":
        return [" · ".join(f"{t(lang, f'polls.choice.{c}')} {counts.get(c, 0)}" for c in PROPOSAL_CHOICES)]
    return [
        t(lang, "polls.option_votes", option=f"{n}. {option}", votes=counts.get(str(n), 0))
        for n, option in enumerate(poll.options, start=1)
    ]


def turnout_line(lang: str, turnout: int, active: int, quorum: int) -> str:
    pct = turnout * 100 // active if active else 0
    return t(lang, "polls.turnout", turnout=turnout, active=active, pct=pct, quorum=quorum)


def outcome_line(poll: Poll, lang: str, result: dict[str, Any]) -> str:
    outcome = result["outcome"]
    counts = result["counts"]
    if outcome == "passed":
        return t(lang, "polls.outcome_passed")
    if outcome == "rejected":
        return t(lang, "polls.outcome_rejected", threshold=poll.threshold_pct)
    if outcome == "blocked":
        return t(lang, "polls.outcome_blocked", blocks=counts.get("block", 0))
    if outcome == "no_quorum":
        return t(lang, "polls.outcome_no_quorum", quorum=poll.quorum_pct)
    if outcome == "chosen":
        return t(lang, "polls.outcome_chosen", option=choice_label(poll, lang, result["winners"][0]))
    if outcome == "tie":
        tied = ", ".join(choice_label(poll, lang, n) for n in result["winners"])
        return t(lang, "polls.outcome_tie", options=tied)
    if outcome == "no_majority":
        return t(lang, "polls.outcome_no_majority", threshold=poll.threshold_pct)
    if outcome == "elected":
        return ranked_outcome_line(poll, lang, result)
    return t(lang, "polls.outcome_no_votes")


def ranked_outcome_line(poll: Poll, lang: str, result: dict[str, Any]) -> str:
    """Who won, and by which method, in one line; the ranking or the rounds follow."""
    names = ", ".join(poll.options[n - 1] for n in result["winners"])
    if result["method"] == "schulze":
        ranking = " > ".join(poll.options[n - 1] for n in result["ranking"])
        return t(lang, "polls.outcome_schulze", option=names, ranking=ranking)
    return t(lang, "polls.outcome_stv", options=names, seats=result["seats"], rounds=len(result["rounds"]))


def draw_line(poll: Poll, lang: str, result: dict[str, Any]) -> str:
    """The tie-break draw, printed with every ranked result so anyone can check it was not needed, or how."""
    order = ", ".join(poll.options[n - 1] for n in result["draw"])
    return t(lang, "polls.draw", order=order, poll=code(poll))


def result_text(session: Session, config: Config, poll: Poll, lang: str) -> str:
    """The result as announced at the close (counts only: it never names anyone)."""
    result = poll.result
    lines = [t(lang, "polls.result_head", poll=code(poll), title=poll.title), outcome_line(poll, lang, result)]
    lines += counts_lines(poll, lang, result["counts"])
    lines.append(turnout_line(lang, result["turnout"], result["active"], poll.quorum_pct))
    if poll.kind == "proposal" and result["counts"].get("block") and not result.get("block_vetoes", True):
        lines.append(t(lang, "polls.blocks_recorded", blocks=result["counts"]["block"]))
    if result.get("method"):
        if result.get("tied"):
            tied = "; ".join(" = ".join(poll.options[n - 1] for n in group) for group in result["tied"])
            lines.append(t(lang, "polls.tied_broken", tied=tied))
        if result["outcome"] == "elected":
            lines += [draw_line(poll, lang, result), t(lang, "polls.full_table", poll=code(poll))]
    if result.get("colleges"):
        lines += college_lines(poll, lang, result)
    if result.get("by_proxy"):
        lines.append(t(lang, "polls.by_proxy", count=result["by_proxy"]))
    if result.get("early"):
        lines.append(t(lang, "polls.closed_early"))
    if "applied" in result and poll.sets_key and is_action(poll.sets_key):
        action = action_text(lang, poll.sets_key, result["applied"], config.coop.currency)
        lines.append(t(lang, "polls.action_applied", action=action))
    elif "applied" in result and poll.sets_key:
        value = _value(config, poll.sets_key, result["applied"], lang)
        lines.append(
            t(lang, "polls.applied", setting=poll.sets_key, value=value, when=applies_when(lang, poll.sets_key))
        )
    if "apply_error" in result:
        error = result["apply_error"]
        lines.append(t(lang, "polls.apply_failed", reason=t(lang, error["key"], **error["params"])))
    return "\n".join(lines)


def college_lines(poll: Poll, lang: str, result: dict[str, Any]) -> list[str]:
    """Each college's turnout and count, then the weighted total (`services.polls.colleges`)."""
    lines = [t(lang, "colleges.by_college")]
    for college in result["colleges"]:
        counts = college["counts"]
        if poll.kind == "proposal":
            shown = " · ".join(f"{t(lang, f'polls.choice.{c}')} {counts.get(c, 0)}" for c in PROPOSAL_CHOICES)
        else:
            shown = " · ".join(f"{choice_label(poll, lang, key)} {votes}" for key, votes in counts.items())
        lines.append(t(lang, "colleges.line", college=college["name"], weight=college["weight"],
                       turnout=college["turnout"], active=college["active"], counts=shown))  # fmt: skip
    weighted = result.get("weighted")
    if weighted and poll.kind == "proposal":
        lines.append(t(lang, "colleges.weighted_agree", pct=weighted["agree"], threshold=poll.threshold_pct))
    elif weighted:
        scores = ", ".join(f"{choice_label(poll, lang, key)} {value}%" for key, value in weighted.items())
        lines.append(t(lang, "colleges.weighted_options", scores=scores))
    return lines
