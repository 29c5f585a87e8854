"""Time-driven work runs from APScheduler, at start and then on every tick."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coopbot.app import CoopBot
from coopbot.chat import Incoming
from coopbot.clock import FakeClock
from coopbot.config import Config
from coopbot.i18n import t
from coopbot.models import AuditEntry, Job, Member, Offer, OutboxMessage, Poll, SeenEvent
from coopbot.scheduler import TICK_SECONDS, Scheduler, SweepContext, Sweeps, sweep
from coopbot.services.audit import record
from coopbot.services.dispatch import offers
from coopbot.services.dispatch.jobs import post_jobs
from coopbot.services.dispatch.parsing import JobSpec
from coopbot.services.polls import settings, voting
from coopbot.sweep_items import failed_text_key, pause_after
from tests.conftest import Coop, make_config


async def test_apscheduler_runs_the_sweeps_at_start_and_on_each_tick(coop: Coop) -> None:
    calls: list[SweepContext] = []
    ticked = asyncio.Event()

    @sweep("test-probe")
    def probe(ctx: SweepContext) -> None:
        calls.append(ctx)
        if len(calls) >= 3:
            ticked.set()

    coop.bot.sweeps.add(probe)
    scheduler = Scheduler(coop.bot.sessions, coop.bot.config, coop.clock, sweeps=coop.bot.sweeps, tick_seconds=0.05)
    await scheduler.start()
    assert len(calls) >= 1, "sweeps run once at start, to catch up"
    await asyncio.wait_for(ticked.wait(), timeout=30)
    scheduler.shutdown()
    assert calls[0].now == coop.clock.now()


async def test_a_failing_sweep_does_not_stop_the_others(coop: Coop) -> None:
    ran: list[str] = []

    @sweep("test-broken")
    def broken(ctx: SweepContext) -> None:
        raise RuntimeError("boom")

    @sweep("test-fine")
    def fine(ctx: SweepContext) -> None:
        ran.append("fine")

    coop.bot.sweeps.add(broken)
    coop.bot.sweeps.add(fine)
    assert coop.bot.scheduler.run_due() == ["test-broken"]
    assert ran == ["fine"]


def test_a_sweep_name_is_taken_once() -> None:
    """Two sweeps under one name would run as one: the second is refused, not silently dropped."""

    @sweep("test-twice")
    def first(ctx: SweepContext) -> None: ...

    @sweep("test-twice")
    def second(ctx: SweepContext) -> None: ...

    sweeps = Sweeps([first])
    with pytest.raises(ValueError, match="sweep 'test-twice' declared twice"):
        sweeps.add(second)
    with pytest.raises(TypeError, match="not declared as a sweep"):
        sweeps.add(lambda ctx: None)
    assert [declared.fn for declared in sweeps] == [first]


async def test_old_update_ids_are_forgotten_after_a_week(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    await coop.bot.handle(Incoming("console", alice, alice, True, "/whoami", event_id="e1"))
    await coop.tick(timedelta(days=6))
    with coop.session() as session:
        assert session.scalar(select(func.count(SeenEvent.id))) == 1
    await coop.tick(timedelta(days=2))
    with coop.session() as session:
        assert session.scalar(select(func.count(SeenEvent.id))) == 0


# --- one failing item never stops the others --------------------------------------------------


def notices(coop: Coop, prefix: str) -> list[str]:
    """What the coordinators were told, by outbox key (queued, sent or not)."""
    with coop.session() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.key.startswith(prefix))).all()
        return [row.text for row in rows]


def audited(coop: Coop, action: str) -> list[str]:
    with coop.session() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        return [str(row.details["item"]) for row in rows]


async def test_a_failing_item_rests_while_the_others_go_on_and_the_coordinators_hear_once(
    coop: Coop, caplog: pytest.LogCaptureFixture
) -> None:
    coop.member("Cora", "coordinator")
    attempts: list[int] = []
    broken = {2}

    @sweep("test-items")
    def items(ctx: SweepContext) -> None:
        def handle(session: Session, item: int) -> None:
            record(session, ctx.now, "test.item", item=item)
            if item in broken:
                attempts.append(item)
                raise OverflowError("Python int too large to convert to SQLite INTEGER")

        ctx.each([1, 2, 3], lambda item: f"X-{item}", handle)

    coop.bot.sweeps.add(items)
    await coop.tick()
    # 1 and 3 went through; 2 failed alone, its audit line rolled back with it.
    assert audited(coop, "test.item") == ["1", "3"]
    assert attempts == [2]
    assert "sweep test-items: X-2 failed (attempt 1, OverflowError)" in caplog.text
    told = notices(coop, "sweep-failed:test-items:X-2")
    assert told == [
        "⚠️ The scheduled work “test-items” failed for X-2 (OverflowError). I try again after a pause that "
        "grows each time; everything else goes on as usual. The details are in the bot’s log."
    ]
    assert told[0] in [m.text for m in coop.room("coordinators")]

    await coop.tick(seconds=TICK_SECONDS)
    assert attempts == [2], "it rests: no new try five seconds later"
    await coop.tick(seconds=60)
    assert attempts == [2, 2], "tried again after a minute"
    await coop.tick(seconds=60)
    assert attempts == [2, 2], "the pause doubles: two minutes now"
    await coop.tick(seconds=60)
    assert attempts == [2, 2, 2]
    assert len(notices(coop, "sweep-failed:")) == 1, "the coordinators are told once, not at every try"
    assert coop.bot.scheduler.failures.codes() == {"test-items": ["X-2"]}

    broken.clear()  # the fault is fixed (an upgrade, a repaired row)
    await coop.tick(minutes=4)
    assert audited(coop, "test.item")[-3:] == ["1", "2", "3"]
    assert notices(coop, "sweep-recovered:test-items:X-2") == [
        "✅ X-2: the scheduled work that failed earlier has now gone through."
    ]
    assert coop.bot.scheduler.failures.codes() == {}


def test_the_pause_doubles_up_to_an_hour() -> None:
    pauses = [pause_after(attempt) for attempt in range(1, 10)]
    assert pauses[:4] == [timedelta(minutes=n) for n in (1, 2, 4, 8)]
    assert pauses[-1] == timedelta(hours=1)
    assert pause_after(10_000) == timedelta(hours=1)


async def test_every_sweep_has_its_sentence_for_the_coordinators_in_both_languages(coop: Coop) -> None:
    assert {"period-close", "polls.close", "dispatch.offers"} <= set(coop.bot.sweeps.names()), "collected at start"
    for name in coop.bot.sweeps.names():
        key = failed_text_key(name)
        assert key != "scheduler.failed.other", f"no sentence for a failure of {name}"
        english, french = t("en", key, item="P-3", error="OverflowError"), t("fr", key, item="P-3", error="E")
        assert english != french


# --- polls: a poll that cannot close never keeps the others open ------------------------------


def open_poll(coop: Coop, proposer: int, title: str, sets: str | None = None, hours: int = 1) -> int:
    with coop.session() as session:
        spec = voting.PollSpec(title, [], sets=sets, closes_at=coop.clock.now() + timedelta(hours=hours))
        return voting.create(session, coop.bot.config, session.get_one(Member, proposer), spec, coop.clock.now()).id


def everyone_agrees(coop: Coop, poll_id: int, voters: list[int]) -> None:
    for member_id in voters:
        with coop.session() as session:
            voter = session.get_one(Member, member_id)
            voting.vote(session, coop.bot.config, voter, f"P-{poll_id}", "agree", coop.clock.now())


def status(coop: Coop, *poll_ids: int) -> list[str]:
    with coop.session() as session:
        return [session.get_one(Poll, poll_id).status for poll_id in poll_ids]


async def test_a_poll_that_cannot_close_never_keeps_the_others_open(any_coop: Coop) -> None:
    coop = any_coop
    cora = coop.member_id(coop.member("Cora", "coordinator"))
    bob = coop.member_id(coop.member("Bob"))
    applied: list[str] = []
    broken = [True]

    def explode(session: Session, config: Config, value: str, now: datetime, poll: Poll | None) -> None:
        if broken[0]:  # what the driver raised for remove_member=#99999999999999999999
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        applied.append(value)

    settings.register_action("test_explodes", lambda value: value.strip(), explode, restricted=False)
    try:
        bad = open_poll(coop, cora, "Do the impossible?", sets="test_explodes=now")
        good = [open_poll(coop, bob, f"Question {n}?") for n in range(3)]
        later = open_poll(coop, bob, "Asked later?", hours=2)
        everyone_agrees(coop, bad, [cora, bob])

        await coop.tick(hours=1)
        assert status(coop, bad, *good, later) == ["open", "closed", "closed", "closed", "open"]
        assert f"🗳 P-{good[0]} is closed: Question 0?" in [m.text.split("\n")[0] for m in coop.inbox("bob")]
        assert notices(coop, f"sweep-failed:polls.close:P-{bad}") == [
            f"⚠️ I could not close the poll P-{bad} (OverflowError); it stays open for now. I try again after a "
            "pause that grows each time, and the other polls close on time. The details are in the bot’s log."
        ]

        await coop.tick(hours=1)
        assert status(coop, bad, later) == ["open", "closed"], "a later poll still closes on time"
        assert len(notices(coop, "sweep-failed:")) == 1, "told once, not at every tick"

        broken[0] = False
        await coop.tick(seconds=TICK_SECONDS)
        assert status(coop, bad) == ["open"], "still resting"
        await coop.tick(hours=1)
        assert status(coop, bad) == ["closed"]
        assert applied == ["now"]
        with coop.session() as session:
            assert session.get_one(Poll, bad).result["outcome"] == "passed"
    finally:
        del settings.GOVERNED["test_explodes"]


async def test_a_removal_stored_by_an_older_version_closes_with_its_reason(any_coop: Coop) -> None:
    """An older version accepted remove_member=#99999999999999999999; such a poll now closes, saying why
    nothing was applied, instead of failing at every tick."""
    coop = any_coop
    coop.member("Alice", "admin")
    bob = coop.member_id(coop.member("Bob"))
    now = coop.clock.now()
    with coop.session() as session:
        stored = Poll(
            title="Remove nobody", kind="proposal", options=[], secret=False, live_results=False, quorum_pct=0,
            threshold_pct=50, proposer_id=bob, created_at=now, closes_at=now + timedelta(hours=1), status="open",
            sets_key="remove_member", sets_value="#99999999999999999999", result={},
        )  # fmt: skip
        session.add(stored)
        session.flush()
        poll_id = stored.id
    everyone_agrees(coop, poll_id, [bob])
    later = open_poll(coop, bob, "Longer lunch?", hours=2)
    await coop.tick(hours=3)
    assert status(coop, poll_id, later) == ["closed", "closed"]
    with coop.session() as session:
        result = session.get_one(Poll, poll_id).result
    assert result["outcome"] == "passed"
    assert result["apply_error"]["params"] == {"ref": "#99999999999999999999"}
    assert notices(coop, "sweep-failed:") == []


# --- dispatch: an offer whose expiry fails does not hold up the other jobs --------------------


async def test_an_offer_that_cannot_expire_does_not_hold_up_the_other_jobs(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(f"sqlite:///{tmp_path / 'coop.sqlite3'}", dispatch={"policy": "rotation", "offer_timeout": 60})
    bot = CoopBot(config, clock=clock)
    coop = Coop(bot, clock)
    try:
        carol = coop.member_id(coop.member("Carol", "coordinator"))
        riders = []
        for name in ("Bob", "Dan"):
            handle = coop.member(name)
            with coop.session() as session:
                offers.set_available(session, config, session.get_one(Member, coop.member_id(handle)), clock.now())
            riders.append(coop.member_id(handle))
            clock.advance(minutes=1)
        with coop.session() as session:
            specs = [JobSpec("Bakery", "Station"), JobSpec("Shop", "Home"), JobSpec("Mill", "Quay")]
            posted = post_jobs(session, config, session.get_one(Member, carol), specs, clock.now())
            jobs = [job.id for job, _ in posted]
        pass_offer = offers.pass_offer

        def fails_for_the_first_job(session: Session, config: Config, job: Job, *args: Any, **kwargs: Any) -> None:
            if job.id == jobs[0]:
                raise RuntimeError("a row an older version left half-written")
            pass_offer(session, config, job, *args, **kwargs)

        monkeypatch.setattr(offers, "pass_offer", fails_for_the_first_job)
        await coop.tick(seconds=60)
        with coop.session() as session:
            expired = session.scalars(select(Offer.job_id).where(Offer.status == "expired").order_by(Offer.job_id))
            assert list(expired) == jobs[1:]
            assert coop.bot.scheduler.failures.codes() == {"dispatch.offers": [f"J-{jobs[0]}"]}
        assert len(notices(coop, f"sweep-failed:dispatch.offers:J-{jobs[0]}")) == 1
    finally:
        bot.dispose()
