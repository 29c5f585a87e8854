"""A member's data is theirs: they can take it, and when they leave, it goes.

The co-op below has two members with rows in every table: Zoé Leclerc, who
will leave, and Bob Martin, a coordinator who stays. Zoé's export must hold
all of her rows and none of Bob's personal data; after she leaves, a search
of every text and JSON column for her name and platform ids finds nothing,
and every period adds up exactly as before.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import JSON, String, func, select
from sqlalchemy.orm import Session

from coopbot.chat import Outgoing
from coopbot.errors import Conflict
from coopbot.models import (
    Allocation,
    Announcement,
    AuditEntry,
    BallotBox,
    Base,
    Contribution,
    Invite,
    Job,
    JobEvent,
    LedgerEntry,
    LinkCode,
    Member,
    Offer,
    OutboxMessage,
    Period,
    Poll,
    Setting,
    Shift,
    TransportState,
    Vote,
    Voter,
)
from coopbot.outbox import queue_to_member
from coopbot.services.audit import record
from coopbot.services.data import leaving
from coopbot.services.data.export import export_zip
from coopbot.services.members import accounts as members_svc
from coopbot.services.members.accounts import pseudonym
from coopbot.services.money import payouts, periods
from coopbot.services.money.close import plan_close
from coopbot.services.polls import settings
from tests.conftest import Coop

ZOE = "Zoé Leclerc"
ZOE_TELEGRAM = "730000117"
ZOE_MATRIX = "@zoe.leclerc:example.org"
BOB = "Bob Martin"
BOB_TELEGRAM = "640000042"
BOB_MATRIX = "@bob.martin:example.org"
ZOE_IBAN = "FR7630006000011234567890189"
BOB_IBAN = "DE89370400440532013000"


@dataclass
class Cast:
    zoe: int
    bob: int
    closed_period: int
    open_period: int


def populate(coop: Coop) -> Cast:
    """Zoé and Bob, with rows in every table, Zoé's name and ids spread in others' texts."""
    coop.member("Alice", "admin")
    zoe_handle = coop.member(ZOE, handle="zoe")
    bob_handle = coop.member(BOB, "coordinator", handle="bob")
    now = coop.clock.now()
    earlier = now - timedelta(days=20)
    with coop.session() as s:
        zoe = members_svc.member_of(s, "console", zoe_handle)
        bob = members_svc.member_of(s, "console", bob_handle)
        assert zoe is not None and bob is not None
        members_svc.add_identity(s, zoe, "telegram", ZOE_TELEGRAM, now, ZOE)
        members_svc.add_identity(s, zoe, "matrix", ZOE_MATRIX, now, "Zoé L.")
        members_svc.add_identity(s, bob, "telegram", BOB_TELEGRAM, now, BOB)
        members_svc.add_identity(s, bob, "matrix", BOB_MATRIX, now, "Bob M.")
        # `coopbot member add` gives each member a console account named by their number.
        members_svc.add_identity(s, bob, "console", "12", now, "")
        payouts.set_iban(s, coop.bot.config, zoe, ZOE_IBAN, now)
        payouts.set_iban(s, coop.bot.config, bob, BOB_IBAN, now)
        november = periods.current_period(s, coop.bot.config, now)
        october = Period(label="2026-10", starts_at=november.starts_at - timedelta(days=31),
                         ends_at=november.starts_at, status="closed", closed_at=november.starts_at,
                         settings=november.settings, totals={"names": {str(zoe.id): ZOE}})
        s.add(october)
        s.flush()
        for period, who, points in ((october, zoe, 3000), (october, bob, 2000), (november, zoe, 1500),
                                    (november, bob, 500)):
            s.add(Contribution(member_id=who.id, period_id=period.id, kind="delivery", quantity_milli=points,
                               points_milli=points, status="approved", source="manual",
                               note=f"logged by {who.name}", created_at=max(period.starts_at, earlier),
                               decided_by=bob.id))
        s.add_all([
            LedgerEntry(period_id=october.id, kind="income", amount_cents=50000, note="Boulangerie Louise",
                        created_by=bob.id, created_at=earlier),
            LedgerEntry(period_id=october.id, kind="base_pay", amount_cents=12000, note=f"base pay {ZOE}",
                        member_id=zoe.id, created_at=earlier),
            LedgerEntry(period_id=november.id, kind="income", amount_cents=100000, note="Épicerie du coin",
                        created_by=bob.id, created_at=now),
            LedgerEntry(period_id=november.id, kind="expense", amount_cents=3000, note="bike repair",
                        created_by=bob.id, created_at=now),
            Allocation(period_id=october.id, member_id=zoe.id, points_milli=3000, dividend_cents=9000),
            Allocation(period_id=october.id, member_id=bob.id, points_milli=2000, dividend_cents=6000, paid=True),
        ])
        her_job = Job(pickup="Boulangerie Louise", dropoff="12 rue des Lilas", status="delivered",
                      assignee_id=zoe.id, created_by=bob.id, created_at=earlier, updated_at=earlier,
                      note=f"ask for {BOB} at the door")
        his_job = Job(pickup="Fromagerie", dropoff="3 quai Est", status="delivered", assignee_id=bob.id,
                      created_by=bob.id, created_at=earlier, updated_at=earlier, note="Bob only")
        s.add_all([her_job, his_job])
        s.flush()
        s.add_all([
            JobEvent(job_id=her_job.id, at=earlier, kind="offered", member_id=zoe.id,
                     details={"candidates": [{"id": zoe.id, "name": ZOE}, {"id": bob.id, "name": BOB}]}),
            JobEvent(job_id=her_job.id, at=earlier, kind="delivered", actor_id=zoe.id, member_id=zoe.id),
            JobEvent(job_id=his_job.id, at=earlier, kind="delivered", actor_id=bob.id, member_id=bob.id),
            Offer(job_id=her_job.id, member_id=zoe.id, status="accepted", offered_at=earlier),
            Shift(member_id=zoe.id, started_at=earlier, ended_at=earlier + timedelta(hours=3)),
        ])
        open_poll = Poll(title=f"Should {ZOE} lead the repair workshop?", kind="proposal", quorum_pct=50,
                         threshold_pct=50, proposer_id=bob.id, created_at=now, closes_at=now + timedelta(days=2))
        secret_poll = Poll(title="Raise the reserve?", kind="proposal", secret=True, quorum_pct=50,
                           threshold_pct=50, proposer_id=zoe.id, created_at=now, closes_at=now + timedelta(days=2))
        s.add_all([open_poll, secret_poll])
        s.flush()
        s.add_all([
            Vote(poll_id=open_poll.id, member_id=zoe.id, choices=["agree"], at=now),
            Vote(poll_id=open_poll.id, member_id=bob.id, choices=["disagree"], at=now),
            Voter(poll_id=secret_poll.id, member_id=zoe.id),
            BallotBox(poll_id=secret_poll.id, sealed=b'\x00{"' + b"k" * 64 + b'": ["block"]}'),
            Announcement(author_id=bob.id, text=f"Welcome {ZOE}! Write to her at {ZOE_MATRIX}.", created_at=now),
            Announcement(author_id=zoe.id, text="Lights on the Lilas bridge are out", created_at=now),
            Setting(key="offer_policy", value="rotation", effective_at=earlier, set_by=zoe.id),
            Invite(code_hash="h" * 64, role="member", created_by=bob.id, created_at=earlier,
                   expires_at=now, used_at=earlier, used_by=zoe.id),
            LinkCode(code_hash="l" * 64, member_id=zoe.id, created_at=now, expires_at=now + timedelta(minutes=5)),
            TransportState(platform="matrix", key=f"dm:{ZOE_MATRIX}", value="!dm-room:example.org"),
            TransportState(platform="matrix", key=f"dm:{BOB_MATRIX}", value="!bob-room:example.org"),
        ])
        record(s, now, "member.role", actor=bob, subject=zoe, old="member", new="member",
               note=f"{ZOE} ({ZOE_TELEGRAM}) asked for it")
        record(s, now, "member.role", actor=zoe, subject=bob, name=BOB, matrix=BOB_MATRIX)
        s.add(OutboxMessage(key="old-notice", platform="telegram", chat_id=BOB_TELEGRAM, private=True,
                            member_id=bob.id, text=f"{ZOE} took J-{her_job.id}.", status="sent",
                            next_attempt_at=earlier, created_at=earlier, sent_at=earlier))
        s.add(OutboxMessage(key="old-private", platform="telegram", chat_id=ZOE_TELEGRAM, private=True,
                            member_id=zoe.id, text=f"Hello {ZOE}, your share is ready.", status="sent",
                            next_attempt_at=earlier, created_at=earlier, sent_at=earlier))
        return Cast(zoe.id, bob.id, october.id, november.id)


def zip_texts(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def database_texts(session: Session) -> list[tuple[str, str, str]]:
    """Every text and JSON value in the database, as (table, column, text)."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, String | JSON):
                continue
            for value in session.execute(select(column)).scalars():
                if value is None:
                    continue
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                found.append((table.name, column.name, text))
    return found


def period_totals(session: Session) -> dict[int, tuple[int, int]]:
    points = dict(session.execute(
        select(Contribution.period_id, func.sum(Contribution.points_milli)).group_by(Contribution.period_id)
    ).all())
    money = dict(session.execute(
        select(LedgerEntry.period_id, func.sum(LedgerEntry.amount_cents)).group_by(LedgerEntry.period_id)
    ).all())
    return {pid: (int(points.get(pid, 0)), int(money.get(pid, 0))) for pid in sorted(set(points) | set(money))}


async def deliver_then_sweep(coop: Coop) -> None:
    """The outbox sends what is due, then the next scheduler tick sees it sent."""
    await coop.bot.outbox.drain()
    await coop.tick(minutes=1)


def export_of(coop: Coop, member_id: int) -> tuple[dict[str, Any], dict[str, str]]:
    with coop.session() as s:
        export = export_zip(s, s.get_one(Member, member_id), coop.clock.now(), coop.bot.config)
    texts = zip_texts(export.data)
    return json.loads(texts["data.json"]), texts


# --- the export -----------------------------------------------------------------------


async def test_the_export_holds_all_her_rows_in_json_and_csv(coop: Coop) -> None:
    cast = populate(coop)
    data, texts = export_of(coop, cast.zoe)
    assert {"data.json", "profile.csv", "identities.csv", "jobs.csv", "contributions.csv", "allocations.csv",
            "votes.csv", "audit.csv", "ledger_entries.csv", "messages.csv"} <= set(texts)
    assert data["profile"][0]["name"] == ZOE
    assert {i["external_id"] for i in data["identities"]} == {"zoe", ZOE_TELEGRAM, ZOE_MATRIX}
    assert [c["points_milli"] for c in data["contributions"]] == [3000, 1500]
    assert [c["period_id"] for c in data["contributions"]] == ["2026-10", "2026-11"]
    assert [(a["period_id"], a["dividend_cents"], a["paid"]) for a in data["allocations"]] == [("2026-10", 9000, False)]
    assert [e["kind"] for e in data["ledger_entries"]] == ["base_pay"]
    assert len(data["jobs"]) == 1 and data["jobs"][0]["created_by"] == cast.bob
    assert len(data["shifts"]) == 1 and len(data["offers"]) == 1
    assert [len(data[name]) for name in ("announcements", "settings_set", "invites", "polls_proposed")] == [1, 1, 1, 1]
    # Her open vote with its choice; the secret poll only as "voted", never what.
    assert [(v["choices"]) for v in data["votes"]] == [["agree"]]
    assert [p["title"] for p in data["secret_polls_voted"]] == ["Raise the reserve?"]
    assert "block" not in texts["secret_polls_voted.csv"] and "choices" not in texts["secret_polls_voted.csv"]
    assert "code_hash" not in texts["invites.csv"] and "h" * 64 not in texts["data.json"]
    assert texts["contributions.csv"].splitlines()[0].startswith("id,member_id,period_id,kind")
    # Her IBAN is hers, in full; the sealed form only the bot can open is not exported.
    assert data["bank_account"] == [{"iban": ZOE_IBAN}]
    with coop.session() as s:
        sealed = s.get_one(Member, cast.zoe).iban_sealed
    assert sealed and sealed not in texts["data.json"] and "iban_sealed" not in texts["profile.csv"]


async def test_the_export_never_holds_another_members_personal_data(coop: Coop) -> None:
    cast = populate(coop)
    _, texts = export_of(coop, cast.zoe)
    everything = "\n".join(texts.values())
    for secret in (BOB, BOB_TELEGRAM, BOB_MATRIX, "Bob M.", "Alice", BOB_IBAN, "0532013000"):
        assert secret not in everything, secret
    # Bob is there, by number only: as the job's creator, the audit's actor, the note's subject.
    assert f"ask for member #{cast.bob} at the door" in everything
    assert "Bob only" not in everything and "640000042" not in everything
    assert "12 rue des Lilas" in everything
    bob_data, bob_texts = export_of(coop, cast.bob)
    assert ZOE not in "\n".join(bob_texts.values()) and ZOE_MATRIX not in "\n".join(bob_texts.values())
    assert [v["choices"] for v in bob_data["votes"]] == [["disagree"]]


# --- leaving and erasure ----------------------------------------------------------------


async def test_after_leaving_nothing_in_the_database_names_her(any_coop: Coop) -> None:
    coop = any_coop
    cast = populate(coop)
    with coop.session() as s:
        before = period_totals(s)
        sealed = s.get_one(Member, cast.zoe).iban_sealed
        assert sealed
        leaving.start_leave(s, s.get_one(Member, cast.zoe), coop.clock.now(), coop.bot.config)
    await deliver_then_sweep(coop)
    with coop.session() as s:
        # Her IBAN too, sealed or in clear, whole or its last digits, is nowhere.
        needles = (ZOE, ZOE_TELEGRAM, ZOE_MATRIX, "Zoé L.", ZOE_IBAN, "FR76 3000", "67890189", sealed[:48])
        hits = [(t, c, text) for t, c, text in database_texts(s)
                for needle in needles if needle.lower() in text.lower()]
        assert hits == []
        assert s.get_one(Member, cast.bob).iban_sealed is not None
        zoe = s.get_one(Member, cast.zoe)
        assert (zoe.name, zoe.active, zoe.language, zoe.identities) == ("former member #2", False, None, [])
        erased = s.scalars(select(AuditEntry).where(AuditEntry.action == "member.erased")).one()
        assert (erased.subject_id, erased.details) == (cast.zoe, {"pseudonym": "former member #2"})
        assert s.scalar(select(func.count()).select_from(LinkCode)) == 0
        assert s.scalars(select(OutboxMessage.attachment).where(OutboxMessage.member_id == cast.zoe)).all() == [
            None, None
        ]
        # The books keep every row, under her number.
        assert period_totals(s) == before
        assert s.scalars(select(Allocation.paid).where(Allocation.member_id == cast.zoe)).all() == [False]
        assert s.scalar(select(func.count()).select_from(Contribution).where(Contribution.member_id == cast.zoe)) == 2
        # Bob and his data are untouched; texts that named her now carry her pseudonym.
        assert s.get_one(Member, cast.bob).name == BOB
        bob_accounts = {i.external_id for i in s.get_one(Member, cast.bob).identities}
        assert bob_accounts == {"bob", "12", BOB_TELEGRAM, BOB_MATRIX}
        notice = s.scalars(select(OutboxMessage.text).where(OutboxMessage.key == "old-notice")).one()
        assert notice.startswith("former member #2 took J-")
        assert s.scalar(select(TransportState.value).where(TransportState.key == f"dm:{BOB_MATRIX}"))


async def test_the_export_goes_first_and_nothing_after(coop: Coop) -> None:
    coop.member("Alice", "admin")
    zoe = coop.member(ZOE, handle="zoe")
    number = coop.member_id(zoe)
    now = coop.clock.now()
    with coop.session() as s:
        member = s.get_one(Member, number)
        queue_to_member(s, member, "earlier-notice", Outgoing("A job near you"), now)
        leaving.start_leave(s, member, now, coop.bot.config)
        assert queue_to_member(s, member, "later-notice", Outgoing("Too late"), now) == 0
    coop.bot.scheduler.run_due()
    with coop.session() as s:
        assert s.get_one(Member, number).name == ZOE, "erased before the export left"
    await deliver_then_sweep(coop)
    delivered = coop.inbox(zoe)
    assert len(delivered) == 1 and delivered[0].attachment is not None
    assert delivered[0].attachment[0] == "coopbot-data-2.zip"
    assert ZOE in zip_texts(delivered[0].attachment[1])["data.json"]
    with coop.session() as s:
        assert s.get_one(Member, number).name == "former member #2"
        statuses = dict(s.execute(select(OutboxMessage.key, OutboxMessage.status)).all())
    assert statuses["earlier-notice:console"] == "dead"
    assert "later-notice:console" not in statuses


async def test_an_export_that_cannot_be_delivered_does_not_keep_her_data_forever(coop: Coop) -> None:
    coop.member("Alice", "admin")
    with coop.session() as s:
        member = members_svc.create_member(s, ZOE, "member", coop.clock.now())
        members_svc.add_identity(s, member, "telegram", ZOE_TELEGRAM, coop.clock.now(), ZOE)
        assert leaving.start_leave(s, member, coop.clock.now(), coop.bot.config, platforms=("telegram",)) == 1
        number = member.id
    await coop.tick(hours=23)
    with coop.session() as s:
        assert s.get_one(Member, number).name == ZOE
    await coop.tick(hours=1)
    with coop.session() as s:
        assert s.get_one(Member, number).name == pseudonym(number)
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.member_id == number)).one()
        assert (row.status, row.attachment, row.text, row.chat_id) == ("dead", None, "", "")


async def test_erasing_twice_changes_nothing(coop: Coop) -> None:
    cast = populate(coop)
    with coop.session() as s:
        leaving.start_leave(s, s.get_one(Member, cast.zoe), coop.clock.now(), coop.bot.config)
    await deliver_then_sweep(coop)
    await coop.tick(minutes=1)
    with coop.session() as s:
        assert leaving.erase_member(s, s.get_one(Member, cast.zoe), coop.clock.now()) is False
        erasures = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "member.erased"))
    assert erasures == 1


async def test_the_last_admin_cannot_leave_nor_be_voted_out(coop: Coop) -> None:
    coop.member("Alice", "admin")
    with coop.session() as s:
        alice = s.get_one(Member, 1)
        for by_vote, key in ((False, "data.last_admin"), (True, "data.last_admin_removal")):
            with pytest.raises(Conflict) as refused:
                leaving.check_can_leave(s, alice, by_vote=by_vote)
            assert refused.value.key == key


# --- removal by vote -------------------------------------------------------------------------


def test_a_removal_names_the_member_and_stores_numbers_canonically() -> None:
    parse = settings.governed("remove_member").parse
    assert parse("17") == "#17"
    assert parse("m-17") == "#17"
    assert parse("  Zoé   Leclerc ") == "Zoé Leclerc"
    assert settings.governed("remove_member").restricted


async def test_a_passed_removal_applies_like_leaving(coop: Coop) -> None:
    cast = populate(coop)
    with coop.session() as s:
        settings.apply(s, coop.bot.config, "remove_member", f"#{cast.zoe}", coop.clock.now())
        zoe = s.get_one(Member, cast.zoe)
        assert not zoe.active
        removed = s.scalars(select(AuditEntry).where(AuditEntry.action == "member.removed")).one()
        assert (removed.actor_id, removed.subject_id) == (None, cast.zoe)
    await deliver_then_sweep(coop)
    assert "By a vote of the members" in coop.inbox("zoe")[-1].text
    with coop.session() as s:
        assert s.get_one(Member, cast.zoe).name == "former member #2"
    with coop.session() as s, pytest.raises(Conflict) as again:
        # A second pass of the same action (a replayed close) changes nothing: she has left.
        settings.apply(s, coop.bot.config, "remove_member", f"#{cast.zoe}", coop.clock.now())
    assert again.value.key == "data.already_left"


# --- what she earned stays hers ----------------------------------------------------------------


async def test_leaving_mid_period_keeps_what_she_earned(coop: Coop) -> None:
    cast = populate(coop)
    with coop.session() as s:
        leaving.start_leave(s, s.get_one(Member, cast.zoe), coop.clock.now(), coop.bot.config)
    await deliver_then_sweep(coop)
    with coop.session() as s:
        plan = plan_close(s, coop.bot.config, s.get_one(Period, cast.open_period))
    shares = {share.member_id: share for share in plan.shares}
    assert shares[cast.zoe].points == 1500
    # 1500 of the 2000 approved points this period: three quarters of the dividend.
    dividend = plan.outcome.buckets.dividend
    assert dividend > 0
    assert shares[cast.zoe].dividend == dividend * 3 // 4
