"""`coopbot export votes --poll P-9`: a closed poll's votes as CSV, for the minutes of a meeting.

A disclosed poll was voted in the open: one row per member and choice (a
ranking gives one row per option ranked, with its rank), and whether the
ballot was cast by proxy and by whom. A secret poll never had such rows to
give: its file is the tally alone, as the close kept it. An open poll is not
exported, so no file shows a result before the close does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from coopbot.errors import Conflict
from coopbot.i18n import t
from coopbot.models import Member, Poll, ProxyVote, Vote
from coopbot.services.polls.texts import code
from coopbot.states import PollStatus

DISCLOSED_HEADER = ("poll", "member_id", "member", "choice", "rank", "cast_by_proxy_holder", "at")
TALLY_HEADER = ("poll", "choice", "votes")


def choice_name(poll: Poll, choice: object, lang: str) -> str:
    if poll.kind == "proposal":
        return t(lang, f"polls.choice.{choice}")
    return str(poll.options[int(str(choice)) - 1])


def disclosed_rows(session: Session, poll: Poll, lang: str) -> Iterator[tuple[str, ...]]:
    holder = aliased(Member)
    rows = session.execute(
        select(Vote, Member.name, holder.name)
        .join(Member, Member.id == Vote.member_id)
        .outerjoin(
            ProxyVote,
            (ProxyVote.poll_id == Vote.poll_id) & (ProxyVote.giver_id == Vote.member_id) & ~ProxyVote.cancelled,
        )
        .outerjoin(holder, holder.id == ProxyVote.holder_id)
        .where(Vote.poll_id == poll.id)
        .order_by(Vote.member_id)
    )
    for vote, name, holder_name in rows:
        for rank, choice in enumerate(vote.choices, start=1):
            yield (code(poll), str(vote.member_id), name, choice_name(poll, choice, lang),
                   str(rank) if poll.kind == "ranked" else "", holder_name or "", vote.at.isoformat())  # fmt: skip


def tally_rows(poll: Poll, lang: str) -> Iterator[tuple[str, ...]]:
    """What the close kept; a ranked poll's counts are its first choices."""
    for choice, votes in poll.result.get("counts", {}).items():
        yield code(poll), choice_name(poll, choice, lang), str(votes)


def votes_csv(session: Session, poll: Poll, lang: str) -> str:
    if poll.status == PollStatus.OPEN:
        raise Conflict("polls.export_open", poll=code(poll))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if poll.secret:
        writer.writerow(TALLY_HEADER)
        writer.writerows(tally_rows(poll, lang))
    else:
        writer.writerow(DISCLOSED_HEADER)
        writer.writerows(disclosed_rows(session, poll, lang))
    return out.getvalue()
