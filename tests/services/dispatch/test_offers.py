"""Offers' rules of the house: offers only to those riding, the fairest worker first,
expiry and idleness handled by sweeps, and a history that explains every step."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from coopbot.app import CoopBot
from coopbot.clock import FakeClock
from coopbot.models import JobEvent, Member
from coopbot.services.dispatch.offers import set_available, set_away
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
