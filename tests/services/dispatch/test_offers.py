"""Offers' rules of the house: offers only to those riding, the fairest worker first,
expiry and idleness handled by sweeps, and a history that explains every step."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import event, select

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.models import JobEvent, Member
from coopbot.models_rosters import Slot, SlotSignup
from coopbot.services.dispatch.offers import set_available, set_away
from coopbot.services.polls import settings as settings_svc
from tests.conftest import Coop, make_config
from tests.services.dispatch.conftest import (
    TIMEOUT,
    act,
    coordinator,
    events,
    job_of,
    offers,
    post,
    refusal,
    riders,
    texts,
)

# --- who is offered what ---------------------------------------------------------------------


async def test_a_worker_who_is_away_gets_no_offer_and_cannot_accept(coop: Coop) -> None:
    carol = coordinator(coop)
    [bob] = riders(coop, "Bob")
    eve = coop.member_id(coop.member("Eve"))
    [job] = post(coop, carol, "Shop -> Home")
    await coop.tick()
    assert offers(coop, job) == {bob: "open"}
    assert coop.inbox("eve") == []
    assert refusal(coop, "accept", eve, job).key == "dispatch.not_offered"


async def test_a_worker_becoming_available_is_offered_the_waiting_jobs(coop: Coop) -> None:
    carol = coordinator(coop)
    [job] = post(coop, carol, "Shop -> Home")
    assert job_of(coop, job).status == "open"
    await coop.tick()
    assert f"Carol posted J-{job}. Nobody available for J-{job}: waiting." in texts(coop.room("coordinators"))
    [bob] = riders(coop, "Bob")
    assert offers(coop, job) == {bob: "open"}
    assert job_of(coop, job).status == "offered"


async def test_rotation_offers_the_fewest_points_first_then_the_longest_idle(rotation: Coop) -> None:
    carol = coordinator(rotation)
    eve, bob, dan = riders(rotation, "Eve", "Bob", "Dan")
    [warmup] = post(rotation, carol, "Warm -> Up")
    assert offers(rotation, warmup) == {eve: "open"}
    act(rotation, "accept", eve, warmup)
    act(rotation, "pickup", eve, warmup)
    act(rotation, "deliver", eve, warmup)
    rotation.clock.advance(minutes=10)
    [job] = post(rotation, carol, "Shop -> Home")
    with rotation.session() as session:
        offered = session.scalars(select(JobEvent).where(JobEvent.job_id == job, JobEvent.kind == "offered")).one()
    ranking = [(c["name"], c["points_milli"], c["idle_minutes"]) for c in offered.details["candidates"]]
    # Bob and Dan have no points yet; Bob has waited a minute longer. Eve delivered one job.
    assert ranking == [("Bob", 0, 12), ("Dan", 0, 11), ("Eve", 1000, 10)]
    assert offered.details["policy"] == "rotation"
    assert offers(rotation, job) == {bob: "open"}
    assert dan not in offers(rotation, job)


async def test_expiry_moves_on_then_everyone_is_asked_and_coordinators_told(rotation: Coop) -> None:
    carol = coordinator(rotation)
    bob, dan = riders(rotation, "Bob", "Dan")
    [job] = post(rotation, carol, "Shop -> Home")
    await rotation.tick(seconds=TIMEOUT - 1)
    assert offers(rotation, job) == {bob: "open"}
    await rotation.tick(seconds=1)
    assert offers(rotation, job) == {bob: "expired", dan: "open"}
    assert f"Time is up for J-{job}: it went to the next worker." in texts(rotation.inbox("bob"))
    act(rotation, "decline", dan, job)
    assert offers(rotation, job) == {bob: "open", dan: "open"}
    await rotation.tick(minutes=30)
    assert offers(rotation, job) == {bob: "open", dan: "open"}, "a broadcast does not expire"
    fallback = f"J-{job}: everyone in the rotation passed; now offered to all 2 available workers."
    assert fallback in texts(rotation.room("coordinators"))
    assert [kind for kind, _ in events(rotation, job)] == [
        "created",
        "offered",
        "expired",
        "offered",
        "declined",
        "fallback",
    ]
    act(rotation, "decline", bob, job)
    act(rotation, "decline", dan, job)
    assert job_of(rotation, job).status == "open"
    await rotation.tick()
    assert f"J-{job} is waiting: nobody available took it (2 passed)." in texts(rotation.room("coordinators"))


async def test_an_offer_that_expired_while_the_bot_was_down_is_handled_at_start(
    tmp_path: Path, clock: FakeClock
) -> None:
    config = make_config(
        f"sqlite:///{tmp_path / 'coop.sqlite3'}", dispatch={"policy": "rotation", "offer_timeout": TIMEOUT}
    )
    first = CoopBot(config, clock=clock)
    coop = Coop(first, clock)
    carol = coordinator(coop)
    bob, dan = riders(coop, "Bob", "Dan")
    [job] = post(coop, carol, "Shop -> Home")
    first.dispose()

    clock.advance(minutes=10)
    second = CoopBot(config, clock=clock)
    await second.start()
    try:
        assert offers(Coop(second, clock), job) == {bob: "expired", dan: "open"}
    finally:
        await second.stop()
        second.dispose()


async def test_an_accept_after_the_offer_expired_is_refused(rotation: Coop) -> None:
    carol = coordinator(rotation)
    bob, _ = riders(rotation, "Bob", "Dan")
    [job] = post(rotation, carol, "Shop -> Home")
    await rotation.tick(seconds=TIMEOUT)
    assert refusal(rotation, "accept", bob, job).key == "dispatch.offer_expired"


async def test_going_away_passes_ones_rotation_offer_to_the_next(rotation: Coop) -> None:
    carol = coordinator(rotation)
    bob, dan = riders(rotation, "Bob", "Dan")
    [job] = post(rotation, carol, "Shop -> Home")
    with rotation.session() as session:
        set_away(session, rotation.bot.config, session.get_one(Member, bob), rotation.clock.now())
    assert offers(rotation, job) == {bob: "declined", dan: "open"}


async def test_a_released_job_goes_to_someone_else_first(rotation: Coop) -> None:
    carol = coordinator(rotation)
    bob, dan = riders(rotation, "Bob", "Dan")
    [job] = post(rotation, carol, "Shop -> Home")
    act(rotation, "accept", bob, job)
    act(rotation, "release", bob, job)
    assert job_of(rotation, job).assignee_id is None
    assert offers(rotation, job) == {bob: "declined", dan: "open"}
    assert [kind for kind, _ in events(rotation, job)][-2:] == ["released", "offered"]


# --- idle riders ----------------------------------------------------------------------------------


async def test_a_quiet_worker_is_asked_then_set_away_and_their_offer_closes(coop: Coop) -> None:
    carol = coordinator(coop)
    bob, dan = riders(coop, "Bob", "Dan")
    idle = coop.bot.config.dispatch
    [job] = post(coop, carol, "Shop -> Home")
    coop.clock.advance(minutes=idle.idle_minutes)
    with coop.session() as session:  # Dan says something: he is still around.
        session.get_one(Member, dan).last_seen_at = coop.clock.now()
    await coop.tick()
    [question] = [m for m in coop.inbox("bob") if m.text.startswith("Are you still riding?")]
    assert [b.command for b in question.buttons] == ["/available", "/away"]
    assert not any(text.startswith("Are you still riding?") for text in texts(coop.inbox("dan")))
    await coop.tick(minutes=idle.idle_answer_minutes - 1)
    assert coop.get_member("bob").available
    await coop.tick(minutes=1)
    assert not coop.get_member("bob").available
    assert coop.get_member("dan").available
    assert any(text.startswith("I have set you away") for text in texts(coop.inbox("bob")))
    assert offers(coop, job) == {bob: "declined", dan: "open"}
    with coop.session() as session:
        last = session.scalars(select(JobEvent).where(JobEvent.job_id == job).order_by(JobEvent.id.desc())).first()
        assert last is not None
        assert (last.kind, last.member_id, last.details["reason"]) == ("declined", bob, "idle")


async def test_answering_still_available_keeps_ones_place(coop: Coop) -> None:
    [bob] = riders(coop, "Bob")
    since = coop.get_member("bob").available_since
    await coop.tick(minutes=coop.bot.config.dispatch.idle_minutes)
    with coop.session() as session:
        member = session.get_one(Member, bob)
        already, _ = set_available(session, coop.bot.config, member, coop.clock.now())
    assert already
    await coop.tick(minutes=coop.bot.config.dispatch.idle_answer_minutes)
    member = coop.get_member("bob")
    assert member.available
    assert member.available_since == since
    assert member.idle_asked_at is None


# --- riders on a running slot come first (`prefer_on_duty`) ---------------------------------------


def running_slot(coop: Coop, coordinator_id: int, *rider_ids: int) -> int:
    """A roster slot that began half an hour ago and runs two more hours, with these riders on it."""
    now = coop.clock.now()
    with coop.session() as session:
        slot = Slot(starts_at=now - timedelta(minutes=30), ends_at=now + timedelta(hours=2), seats=len(rider_ids),
                    created_by=coordinator_id, created_at=now - timedelta(days=1))  # fmt: skip
        session.add(slot)
        session.flush()
        session.add_all([SlotSignup(slot_id=slot.id, member_id=rider, signed_at=slot.created_at)
                         for rider in rider_ids])  # fmt: skip
        return slot.id


def offered_event(coop: Coop, job_id: int) -> JobEvent:
    with coop.session() as session:
        event = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.kind == "offered")).one()
        session.expunge(event)
        return event


async def test_a_rider_whose_slot_is_running_is_offered_first_and_why_says_so(rotation: Coop) -> None:
    carol = coordinator(rotation)
    _, _, dan = riders(rotation, "Eve", "Bob", "Dan")
    slot = running_slot(rotation, carol, dan)
    [job] = post(rotation, carol, "Shop -> Home")
    assert offers(rotation, job) == {dan: "open"}
    details = offered_event(rotation, job).details
    assert details["prefer_on_duty"] is True
    assert [(c["name"], c.get("on_duty")) for c in details["candidates"]] == [("Dan", slot), ("Eve", None),
                                                                               ("Bob", None)]  # fmt: skip
    why = (await rotation.say("bob", f"/why J-{job}")).splitlines()
    assert why[3].startswith("• 09:03 offered to Dan alone for 1 min (rotation: riders whose slot is running first, "
                             "then fewest points this period")
    assert why[3].endswith(f"Ranking: 1. Dan 0 pts, idle 1 min, on slot S-{slot}; 2. Eve 0 pts, idle 3 min; "
                           "3. Bob 0 pts, idle 2 min")
    assert why[4] == f"  → Dan first: their slot S-{slot} is running."


async def test_a_co_op_that_votes_it_off_keeps_the_plain_rotation_at_the_same_cost(rotation: Coop) -> None:
    """Off, the rotation reads what it read before; on, one query more per offer round, whatever the riders."""
    carol = coordinator(rotation)
    eve, *others = riders(rotation, "Eve", "Bob", "Dan", "Fay", "Gus")
    running_slot(rotation, carol, *others)
    statements: list[str] = []
    listen = event.listens_for(rotation.bot.engine, "before_cursor_execute")

    @listen
    def count(*args: object) -> None:
        statements.append(str(args[2]))

    [first] = post(rotation, carol, "Shop -> Home")
    on = len(statements)
    assert offers(rotation, first) == {others[0]: "open"}
    with rotation.session() as session:
        settings_svc.apply(session, rotation.bot.config, "prefer_on_duty", "no", rotation.clock.now())
    rotation.clock.advance(minutes=1)
    statements.clear()
    [second] = post(rotation, carol, "Shop -> Home")
    off = len(statements)
    assert offers(rotation, second) == {eve: "open"}
    details = offered_event(rotation, second).details
    assert details["prefer_on_duty"] is False and all("on_duty" not in c for c in details["candidates"])
    assert on - off == 1
