"""Proxies: a member who cannot vote gives their vote to another member.

Loomio's users have asked for this for years: "cast a vote on behalf of
someone else, properly logged". A member gives their vote for one poll
(`/proxy P-9 Chloé`) or for every poll until they revoke it (`/proxy Chloé`,
`/proxy off`); a poll-specific proxy wins over a standing one. The co-op
decides by vote whether proxies are allowed and how many one member may hold
(`proxy_limit`, 0 for none; French co-ops' statutes usually allow one or
two), so nobody gathers a bloc of votes.

The holder votes once for themselves and once for each giver (`/vote P-9
agree for Dan`). The ballot is the giver's own: it counts where theirs
would, in the quorum and in the tally, and in a secret poll it goes in the
sealed box like any other, so a proxy's choice is as secret as any vote.
What is logged is who gave a proxy to whom, when it was revoked, and that a
holder used it in a poll, never the choice. The giver may still vote
themselves until the close: their own vote replaces the holder's and
cancels the proxy for that poll.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing
from coopbot.config import Config
from coopbot.errors import Conflict, NotAllowed, UsageError
from coopbot.i18n import t
from coopbot.models import Member, Poll, Proxy, ProxyVote, Vote, Voter
from coopbot.outbox import queue_to_member
from coopbot.services.audit import record
from coopbot.services.members.accounts import is_customer, language_of
from coopbot.services.polls import settings
from coopbot.services.polls.texts import code
from coopbot.states import PollStatus

LIMIT_KEY = "proxy_limit"
MOST = 10


def parse_limit(text: str) -> str:
    value = text.strip()
    if not value.isdigit() or not 0 <= int(value) <= MOST:
        raise settings.bad(LIMIT_KEY, f"0–{MOST}")
    return str(int(value))


settings.register_setting(LIMIT_KEY, parse_limit, default="1")


def limit(session: Session, config: Config, now: datetime) -> int:
    return int(settings.current(session, config, LIMIT_KEY, now))


# --- giving and revoking -----------------------------------------------------------


def in_force(session: Session) -> list[Proxy]:
    """Proxies not revoked, standing or for a poll still open."""
    open_polls = select(Poll.id).where(Poll.status == PollStatus.OPEN)
    return list(
        session.scalars(
            select(Proxy)
            .where(Proxy.revoked_at.is_(None), or_(Proxy.poll_id.is_(None), Proxy.poll_id.in_(open_polls)))
            .order_by(Proxy.id)
        )
    )


def give(
    session: Session, config: Config, giver: Member, holder: Member, poll: Poll | None, now: datetime
) -> Proxy:
    """Give `giver`'s vote to `holder`, for `poll` or until revoked; replaces a proxy of the same reach."""
    most = limit(session, config, now)
    if most == 0:
        raise NotAllowed("proxies.not_allowed")
    if holder.id == giver.id:
        raise UsageError("proxies.to_self")
    if not holder.active or is_customer(holder):
        raise UsageError("proxies.holder_not_member", name=holder.name)
    if poll is not None and poll.status != PollStatus.OPEN:
        raise Conflict("polls.closed", poll=code(poll))
    current = in_force(session)
    held = [p for p in current if p.holder_id == holder.id and p.giver_id != giver.id]
    if len(held) >= most:
        raise Conflict("proxies.holder_full", name=holder.name, count=most)
    for same in (p for p in current if p.giver_id == giver.id and p.poll_id == (poll.id if poll else None)):
        same.revoked_at = now
    proxy = Proxy(giver_id=giver.id, holder_id=holder.id, poll_id=poll.id if poll else None, given_at=now)
    session.add(proxy)
    session.flush()
    reach = code(poll) if poll is not None else "standing"
    record(session, now, "proxy.given", actor=giver, holder=f"#{holder.id}", poll=reach)
    lang = language_of(config, holder)
    told = t(lang, "proxies.told_holder_poll" if poll else "proxies.told_holder", name=giver.name,
             poll=code(poll) if poll else "")  # fmt: skip
    queue_to_member(session, holder, f"proxy:{proxy.id}:given", Outgoing(told), now)
    return proxy


def revoke(session: Session, giver: Member, now: datetime) -> int:
    """Every proxy the member gave, standing or for a poll, ends now; how many did."""
    ended = [p for p in in_force(session) if p.giver_id == giver.id]
    for proxy in ended:
        proxy.revoked_at = now
        record(session, now, "proxy.revoked", actor=giver, holder=f"#{proxy.holder_id}",
               poll=f"P-{proxy.poll_id}" if proxy.poll_id else "standing")  # fmt: skip
    return len(ended)


def given_by(session: Session, giver: Member) -> list[Proxy]:
    return [p for p in in_force(session) if p.giver_id == giver.id]


def held_by(session: Session, holder: Member) -> list[Proxy]:
    return [p for p in in_force(session) if p.holder_id == holder.id]


def standing(session: Session, member: Member) -> tuple[list[tuple[str, int | None]], list[tuple[str, int | None]]]:
    """What `/proxy` shows a member: (holder's name, poll) for each proxy they gave, then
    (giver's name, poll) for each they hold; poll None means every poll."""
    def name(member_id: int) -> str:
        return session.get_one(Member, member_id).name

    given = [(name(p.holder_id), p.poll_id) for p in given_by(session, member)]
    return given, [(name(p.giver_id), p.poll_id) for p in held_by(session, member)]


# --- voting by proxy ------------------------------------------------------------------


def proxy_for(session: Session, giver: Member, poll: Poll) -> Proxy | None:
    """The proxy that carries `giver`'s vote in `poll`: one for this poll, else the standing one."""
    found = [p for p in given_by(session, giver) if p.poll_id in (poll.id, None)]
    found.sort(key=lambda p: p.poll_id is None)
    return found[0] if found else None


def givers_for(session: Session, holder: Member, poll: Poll) -> list[Member]:
    """Whose votes `holder` may cast in `poll` now, by name order."""
    givers = []
    for proxy in held_by(session, holder):
        giver = session.get_one(Member, proxy.giver_id)
        chosen = proxy_for(session, giver, poll)
        if giver.active and chosen is not None and chosen.id == proxy.id and may_still_use(session, poll, giver):
            givers.append(giver)
    return sorted(givers, key=lambda m: m.name)


def may_still_use(session: Session, poll: Poll, giver: Member) -> bool:
    """False once the giver voted themselves: their own vote counts."""
    used = session.scalars(
        select(ProxyVote).where(ProxyVote.poll_id == poll.id, ProxyVote.giver_id == giver.id)
    ).one_or_none()
    if used is not None:
        return not used.cancelled
    table = Voter if poll.secret else Vote
    voted = session.scalar(select(table.id).where(table.poll_id == poll.id, table.member_id == giver.id))
    return voted is None


def check_holder(session: Session, poll: Poll, holder: Member, giver: Member) -> None:
    proxy = proxy_for(session, giver, poll)
    if proxy is None or proxy.holder_id != holder.id or not giver.active:
        raise NotAllowed("proxies.not_holder", name=giver.name, poll=code(poll))
    if not may_still_use(session, poll, giver):
        raise Conflict("proxies.giver_voted", name=giver.name, poll=code(poll))


def used(session: Session, config: Config, poll: Poll, holder: Member, giver: Member, now: datetime) -> None:
    """The holder cast the giver's ballot: logged (never the choice), the giver told once per poll."""
    row = session.scalars(
        select(ProxyVote).where(ProxyVote.poll_id == poll.id, ProxyVote.giver_id == giver.id)
    ).one_or_none()
    if row is None:
        session.add(ProxyVote(poll_id=poll.id, giver_id=giver.id, holder_id=holder.id, cancelled=False, at=now))
        record(session, now, "proxy.used", actor=holder, giver=f"#{giver.id}", poll=code(poll))
        text = t(language_of(config, giver), "proxies.told_giver", name=holder.name, poll=code(poll))
        queue_to_member(session, giver, f"proxy:{poll.id}:used:m{giver.id}", Outgoing(text), now)
    else:
        row.at = now


def voted_themselves(session: Session, poll: Poll, giver: Member, now: datetime) -> None:
    """The giver's own vote replaces the holder's and ends the proxy for this poll."""
    row = session.scalars(
        select(ProxyVote).where(ProxyVote.poll_id == poll.id, ProxyVote.giver_id == giver.id)
    ).one_or_none()
    if row is not None and not row.cancelled:
        row.cancelled = True
        record(session, now, "proxy.cancelled", actor=giver, poll=code(poll))


def by_proxy(session: Session, poll: Poll, member_ids: set[int]) -> int:
    """How many of these members' ballots came by proxy (the result says so)."""
    found = session.scalar(
        select(func.count(ProxyVote.id)).where(
            ProxyVote.poll_id == poll.id, ProxyVote.cancelled.is_(False), ProxyVote.giver_id.in_(member_ids)
        )
    )
    return int(found or 0)


def holdings(session: Session, poll: Poll) -> dict[int, list[Member]]:
    """Holder id → the members whose votes they hold in a poll just opened (standing proxies:
    one for this poll cannot exist yet), for the ballots the poll sends."""
    held: dict[int, list[Member]] = {}
    for proxy in in_force(session):
        giver = session.get_one(Member, proxy.giver_id)
        if proxy.poll_id is None and giver.active:
            held.setdefault(proxy.holder_id, []).append(giver)
    return {holder: sorted(givers, key=lambda m: m.name) for holder, givers in held.items()}
