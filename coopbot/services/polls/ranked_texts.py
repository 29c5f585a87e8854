"""`/results P-9 full`: how a ranked poll was counted, step by step, in chat.

The short result names the method and the winner; this is the whole count
for anyone who wants to check it: for the Schulze method every pair of
options with how many ranked one above the other and the strongest path each
way (the two tables of the method, read pair by pair, which a phone shows
better than a grid); for Meek's STV every round with the quota, each
option's votes, the votes exhausted and who was elected or excluded. All of
it comes from what the close stored, so it reads the same in a year.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal

from coopbot.errors import UsageError
from coopbot.i18n import t
from coopbot.models import Poll
from coopbot.services.polls.texts import code, draw_line
from coopbot.states import PollStatus

#: Votes in STV rounds are shown to two places; the stored figures keep the method's own precision.
SHOWN = Decimal("0.01")


def full_lines(poll: Poll, lang: str) -> list[str]:
    if poll.kind != "ranked":
        raise UsageError("polls.full_not_ranked", poll=code(poll))
    if poll.status == PollStatus.OPEN:
        raise UsageError("polls.full_not_closed", poll=code(poll))
    result = poll.result
    if result.get("outcome") != "elected":
        return []
    method = t(lang, "polls.method_schulze" if result["method"] == "schulze" else "polls.method_stv",
               seats=result["seats"])  # fmt: skip
    lines = [t(lang, "polls.full_head", poll=code(poll), method=method)]
    lines += schulze_lines(poll, lang, result) if result["method"] == "schulze" else stv_lines(poll, lang, result)
    lines.append(draw_line(poll, lang, result))
    return lines


def schulze_lines(poll: Poll, lang: str, result: dict[str, Any]) -> list[str]:
    pairwise, strongest = result["pairwise"], result["strongest"]
    lines = [t(lang, "polls.full_pairwise")]
    for i, one in enumerate(poll.options):
        for j in range(i + 1, len(poll.options)):
            lines.append(t(lang, "polls.full_pair", one=one, other=poll.options[j], won=pairwise[i][j],
                           lost=pairwise[j][i], path=strongest[i][j], back=strongest[j][i]))  # fmt: skip
    return lines


def shown(value: str, lang: str) -> str:
    return format_decimal(Decimal(value).quantize(SHOWN), format="#,##0.00", locale=lang)


def stv_lines(poll: Poll, lang: str, result: dict[str, Any]) -> list[str]:
    lines = []
    for number, one in enumerate(result["rounds"], start=1):
        votes = ", ".join(f"{option} {shown(v, lang)}" for option, v in zip(poll.options, one["votes"], strict=True))
        lines.append(t(lang, "polls.full_round", round=number, quota=shown(one["quota"], lang), votes=votes,
                       exhausted=shown(one["exhausted"], lang)))  # fmt: skip
        if one["elected"]:
            names = ", ".join(poll.options[n - 1] for n in one["elected"])
            lines.append(t(lang, "polls.full_round_elected", names=names))
        if one["excluded"] is not None:
            lines.append(t(lang, "polls.full_round_excluded", name=poll.options[one["excluded"] - 1]))
    return lines
