"""Polls shown as a platform's own poll, where that helps (Matrix clients such as Element).

A disclosed single- or multiple-choice poll is announced in the co-op's
rooms as a native poll; a member's answer there is turned by the transport
into `/vote CODE 1,3`, so the rules of voting hold unchanged: members only,
the latest vote counts, one vote per member across platforms. At the close
the rooms get the result with the native poll ended.

A secret poll is never native: a native poll's answers are room events every
member of the room (and the homeserver) can read, so its secrecy would be
gone. A ranked poll is not either: clients can tick options, not rank them.
Both are announced as text, as on every platform.

The messages are written at delivery by the outbox (`render="poll:start:12"`),
because a native poll is not something an outbox row stores.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from coopbot.chat import NativePoll, Outgoing
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import Member, OutboxMessage, Poll
from coopbot.outbox import queue_to_rooms, renderer
from coopbot.services.polls.texts import closes_line, code, result_text

RENDER = "poll"


def is_native(poll: Poll) -> bool:
    return poll.kind in ("single", "multiple") and not poll.secret


def announce_text(session: Session, config: Config, poll: Poll, now: datetime) -> str:
    lang = config.coop.default_language
    proposer = session.get(Member, poll.proposer_id) if poll.proposer_id else None
    return t(lang, "polls.announce_new", name=proposer.name if proposer else "?", poll=code(poll), title=poll.title,
             closes=closes_line(config, poll, lang, now))  # fmt: skip


def native(poll: Poll, *, ended: bool = False) -> NativePoll:
    most = len(poll.options) if poll.kind == "multiple" else 1
    return NativePoll(code(poll), poll.title, tuple(poll.options), most, ended)


def queue_announcement(session: Session, config: Config, poll: Poll, now: datetime) -> None:
    """The rooms hear of a new poll: as a native poll where it may be one, as text otherwise."""
    key = f"poll:{poll.id}:new"
    if is_native(poll):
        queue_to_rooms(session, config, key, Outgoing(""), now, render=f"{RENDER}:start:{poll.id}")
    else:
        queue_to_rooms(session, config, key, Outgoing(announce_text(session, config, poll, now)), now)


def queue_result(session: Session, config: Config, poll: Poll, now: datetime) -> None:
    key = f"poll:{poll.id}:result"
    if is_native(poll):
        queue_to_rooms(session, config, key, Outgoing(""), now, render=f"{RENDER}:end:{poll.id}")
    else:
        text = result_text(session, config, poll, config.coop.default_language)
        queue_to_rooms(session, config, key, Outgoing(text), now)


@renderer(RENDER)
def _poll_message(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    stage, _, poll_id = argument.partition(":")
    poll = session.get_one(Poll, int(poll_id))
    if stage == "start":
        return Outgoing(announce_text(session, config, poll, row.created_at), poll=native(poll))
    text = result_text(session, config, poll, config.coop.default_language)
    return Outgoing(text, poll=native(poll, ended=True))
