"""Announcements: split to fit every platform (the split itself is `tests/test_splitting.py`),
queued once per member and platform, and a receipt that tells the author the truth."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from coopbot.errors import Conflict, UsageError
from coopbot.models import Announcement, Member, OutboxMessage
from coopbot.outbox import Recipient, store_new
from coopbot.services.announcements import announce as svc
from coopbot.services.members import accounts as members_svc
from coopbot.splitting import utf8_bytes, utf16_units
from tests.conftest import Coop
from tests.test_outbox_restart import RecordingTransport


def test_each_platform_gets_parts_that_fit_its_own_limit(coop: Coop) -> None:
    alice = coop.member("Alice", "coordinator")
    long_text = " ".join(f"Point {n}: the rota for next week changes, read it carefully." for n in range(300))
    with coop.session() as session:
        author = members_svc.member_of(session, "console", alice)
        assert author is not None
        announcement = Announcement(author_id=author.id, text=long_text, created_at=coop.clock.now(), id=7)
        telegram = svc.compose("en", announcement, "Alice", "telegram")
        matrix = svc.compose("fr", announcement, "Alice", "matrix")
    assert len(telegram) > len(matrix) > 1
    assert all(utf16_units(m) <= 4096 for m in telegram)
    assert all(utf8_bytes(m) <= 16000 for m in matrix)
    assert telegram[1].startswith(f"📣 Announcement A-7 from Alice (2/{len(telegram)})\n\n")
    assert matrix[0].startswith(f"📣 Annonce A-7, par Alice (1/{len(matrix)})")
    assert all(m.rstrip().endswith(".") for m in telegram), "cut at sentence ends"


def linked(coop: Coop, name: str, *, telegram: str | None = None, matrix: str | None = None, **prefs: object) -> int:
    """A member on Telegram and/or Matrix only (no console account)."""
    with coop.session() as session:
        member = members_svc.create_member(session, name, "member", coop.clock.now())
        for platform, external in (("telegram", telegram), ("matrix", matrix)):
            if external:
                members_svc.add_identity(session, member, platform, external, coop.clock.now())
        for key, value in prefs.items():
            setattr(member, key, value)
        return member.id


def rows(coop: Coop, announcement_id: int) -> list[tuple[str, int | None, str]]:
    with coop.session() as session:
        found = session.execute(
            select(OutboxMessage.key, OutboxMessage.member_id, OutboxMessage.platform)
            .where(OutboxMessage.announcement_id == announcement_id)
            .order_by(OutboxMessage.id)
        )
        return [(key, member_id, platform) for key, member_id, platform in found]


def author(coop: Coop, session: object, name: str = "alice") -> Member:
    found = members_svc.member_of(session, "console", name)  # type: ignore[arg-type]
    assert found is not None
    return found


def test_one_row_per_member_and_platform_honouring_notify_and_mute(coop: Coop) -> None:
    coop.member("Alice", "coordinator")
    both = linked(coop, "Bea", telegram="101", matrix="@bea:coop")
    prefers = linked(coop, "Cam", telegram="102", matrix="@cam:coop", notify="matrix")
    muted = linked(coop, "Dan", telegram="103", mute_announcements=True)
    with coop.session() as session:
        queued = svc.announce(session, coop.bot.config, author(coop, session), "AG jeudi", coop.clock.now())
        announcement_id = queued.announcement.id
    assert (queued.members, queued.muted, queued.rooms) == (3, 1, 1)
    keyed = rows(coop, announcement_id)
    platforms = Counter((member_id, platform) for _, member_id, platform in keyed)
    assert {k for k in platforms if k[0] == both} == {(both, "telegram"), (both, "matrix")}
    assert {k for k in platforms if k[0] == prefers} == {(prefers, "matrix")}
    assert not any(member_id == muted for _, member_id, _ in keyed)
    assert f"announce:{announcement_id}:m{both}:part1:telegram" in [key for key, _, _ in keyed]
    assert all(count == 1 for count in platforms.values())


def test_urgent_reaches_muted_members_and_queueing_again_stores_nothing(coop: Coop) -> None:
    coop.member("Alice", "coordinator")
    muted = linked(coop, "Dan", telegram="103", mute_announcements=True)
    with coop.session() as session:
        queued = svc.announce(
            session, coop.bot.config, author(coop, session), "Road closed", coop.clock.now(), urgent=True
        )
        assert queued.muted == 0
        composer = svc._Composer(queued.announcement, "Alice", "en")
        member = Recipient.of(session.get_one(Member, muted))
        assert store_new(session, composer.rows(member, coop.clock.now())) == 0
    assert any(member_id == muted for _, member_id, _ in rows(coop, queued.announcement.id))


def test_targets_a_role_and_its_rooms(coop: Coop) -> None:
    coop.member("Alice", "admin")
    coop.member("Cora", "coordinator")
    coop.member("Bob")
    with coop.session() as session:
        me = author(coop, session)
        to_coordinators = svc.announce(
            session, coop.bot.config, me, "Budget", coop.clock.now(), target_role="coordinator"
        )
        to_members = svc.announce(session, coop.bot.config, me, "Helmets", coop.clock.now(), target_role="member")
    assert to_coordinators.members == 2 and to_members.members == 1
    chats = [
        key.rsplit(":", 1)[1] for key, member_id, _ in rows(coop, to_coordinators.announcement.id) if not member_id
    ]
    assert chats == ["coordinators"]


def test_a_bad_announcement_is_refused_whole(coop: Coop) -> None:
    coop.member("Alice", "coordinator")
    with coop.session() as session:
        with pytest.raises(UsageError):
            svc.announce(session, coop.bot.config, author(coop, session), "   ", coop.clock.now())
        with pytest.raises(UsageError) as too_long:
            svc.announce(session, coop.bot.config, author(coop, session), "x" * 12001, coop.clock.now())
        assert too_long.value.key == "announce.too_long"
    with coop.session() as session:
        assert session.scalars(select(Announcement)).all() == []


def test_notify_needs_a_linked_account(coop: Coop) -> None:
    bea = linked(coop, "Bea", telegram="101")
    with coop.session() as session:
        member = session.get_one(Member, bea)
        assert svc.set_notify(member, "telegram") == "telegram"
        with pytest.raises(Conflict):
            svc.set_notify(member, "matrix")


def test_parse_ref_accepts_what_people_type() -> None:
    assert [svc.parse_ref(r) for r in ("A-4", "a4", "#4", "4", " a-12 ")] == [4, 4, 4, 4, 12]
    with pytest.raises(UsageError):
        svc.parse_ref("B-4")


async def test_a_blocked_account_falls_back_to_the_other_platform_and_the_receipt_names_the_lost(
    any_coop: Coop,
) -> None:
    coop = any_coop
    telegram = RecordingTransport(platform="telegram", blocked={"102", "103"})
    coop.bot.add_transport(telegram)
    matrix = RecordingTransport(platform="matrix")
    coop.bot.add_transport(matrix)
    alice = coop.member("Alice", "coordinator")
    linked(coop, "Bea", telegram="101")
    linked(coop, "Cam", telegram="102", matrix="@cam:coop", notify="telegram")
    linked(coop, "Dan", telegram="103")
    with coop.session() as session:
        queued = svc.announce(session, coop.bot.config, author(coop, session), "AG jeudi", coop.clock.now())
    await coop.tick()  # delivers; Cam's and Dan's Telegram fail
    await coop.tick()  # the sweep retries Cam on Matrix
    await coop.tick()  # nothing pending: the receipt
    await coop.tick()
    assert [chat for chat, _, _ in matrix.deliveries] == ["@cam:coop"]
    receipts = [m.text for m in coop.inbox(alice) if m.text.startswith("✅")]
    assert receipts == [
        "✅ Announcement A-1 delivered to 3 of 4 members; 1 unreachable: Dan "
        "(they blocked the bot or never opened a private chat with it)."
    ]
    with coop.session() as session:
        done = svc.delivery(session, session.get_one(Announcement, queued.announcement.id))
        assert (done.delivered, done.pending, done.unreachable, done.rooms_sent) == (3, 0, 1, 1)


async def test_a_member_who_leaves_before_delivery_is_not_reported_unreachable(coop: Coop) -> None:
    alice = coop.member("Alice", "coordinator")
    coop.member("Bob")
    eve = coop.member("Eve")
    with coop.session() as session:
        svc.announce(session, coop.bot.config, author(coop, session), "Potluck on Friday", coop.clock.now())
        author(coop, session, eve).active = False  # she left before the outbox got to her
    await coop.tick(seconds=5)
    await coop.tick(seconds=5)
    with coop.session() as session:
        left = session.scalars(select(OutboxMessage.status).where(OutboxMessage.chat_id == eve)).all()
    assert left == ["dead"]
    assert [m.text for m in coop.inbox(alice) if m.text.startswith("✅")] == [
        "✅ Announcement A-1 delivered to all 2 members."
    ]
