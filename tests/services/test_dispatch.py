"""Dispatch's rules of the house: one winner per job, offers only to those
riding, the fairest worker first, and a history that explains every step."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from coopbot.app import CoopBot
from coopbot.chat import Outgoing
from coopbot.clock import FakeClock
from coopbot.errors import Conflict, CoopError, NotAllowed
from coopbot.models import Contribution, Job, JobEvent, LedgerEntry, Member, Offer
from coopbot.services import dispatch as svc
from coopbot.services.jobparse import JobSpec
from tests.conftest import Coop, make_config

TIMEOUT = 60


@pytest.fixture
async def rotation(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Coop]:
    """A co-op whose members voted for the rotation, with one-minute offers."""
    bot = CoopBot(
        make_config(
            f"sqlite:///{tmp_path / 'coop.sqlite3'}", dispatch={"policy": "rotation", "offer_timeout": TIMEOUT}
        ),
        clock=clock,
    )
    yield Coop(bot, clock)
    bot.dispose()


def riders(coop: Coop, *names: str) -> list[int]:
    """Members who say /available, one minute apart, in the order given."""
    ids = []
    for name in names:
        handle = coop.member(name)
        with coop.session() as session:
            member = session.get_one(Member, coop.member_id(handle))
            svc.set_available(session, coop.bot.config, member, coop.clock.now())
            ids.append(member.id)
        coop.clock.advance(minutes=1)
    return ids


def post(coop: Coop, coordinator: int, *lines: str) -> list[int]:
    with coop.session() as session:
        actor = session.get_one(Member, coordinator)
        specs = [JobSpec(pickup, dropoff) for pickup, dropoff in (line.split(" -> ", 1) for line in lines)]
        return [job.id for job, _ in svc.post_jobs(session, coop.bot.config, actor, specs, coop.clock.now())]


def act(coop: Coop, fn_name: str, member_id: int, job_id: int, *extra: object) -> object:
    """Call one dispatch function as `member_id`, in its own transaction."""
    with coop.session() as session:
        member = session.get_one(Member, member_id)
        fn = getattr(svc, fn_name)
        return fn(session, coop.bot.config, member, job_id, *extra, coop.clock.now())


def refusal(coop: Coop, fn_name: str, member_id: int, job_id: int, *extra: object) -> CoopError:
    with pytest.raises(CoopError) as refused:
        act(coop, fn_name, member_id, job_id, *extra)
    return refused.value


def events(coop: Coop, job_id: int) -> list[tuple[str, int | None]]:
    with coop.session() as session:
        rows = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        return [(e.kind, e.member_id) for e in rows]


def offers(coop: Coop, job_id: int) -> dict[int, str]:
    with coop.session() as session:
        return {o.member_id: o.status for o in session.scalars(select(Offer).where(Offer.job_id == job_id))}


def job_of(coop: Coop, job_id: int) -> Job:
    with coop.session() as session:
        job = session.get_one(Job, job_id)
        session.expunge(job)
        return job


def texts(messages: list[Outgoing]) -> list[str]:
    return [m.text for m in messages]


def coordinator(coop: Coop) -> int:
    return coop.member_id(coop.member("Carol", "coordinator"))


# --- exactly one winner --------------------------------------------------------------------


def race_to_accept(coop: Coop, workers: list[int], job_id: int) -> tuple[list[int], list[Conflict]]:
    """Every worker accepts at the same instant, each from its own thread and session."""
    start = threading.Barrier(len(workers))
    won: list[int] = []
    lost: list[Conflict] = []
    unexpected: list[BaseException] = []

    def accept(member_id: int) -> None:
        try:
            start.wait()
            act(coop, "accept", member_id, job_id)
            won.append(member_id)
        except Conflict as refused:
            lost.append(refused)
        except BaseException as exc:
            unexpected.append(exc)

    threads = [threading.Thread(target=accept, args=(member_id,)) for member_id in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert unexpected == []
    return won, lost


async def test_many_workers_accepting_at_once_give_exactly_one_winner_per_job(any_coop: Coop) -> None:
    carol = coordinator(any_coop)
    workers = riders(any_coop, *(f"Rider{i}" for i in range(12)))
    for job_id in post(any_coop, carol, *(f"Shop {n} -> Home {n}" for n in range(4))):
        won, lost = race_to_accept(any_coop, workers, job_id)
        assert len(won) == 1
        winner = won[0]
        assert len(lost) == len(workers) - 1
        winner_name = f"Rider{workers.index(winner)}"
        assert {(err.key, err.params["name"]) for err in lost} == {("dispatch.already_taken", winner_name)}
        job = job_of(any_coop, job_id)
        assert (job.status, job.assignee_id) == ("assigned", winner)
        assert [kind for kind, _ in events(any_coop, job_id)].count("accepted") == 1
        statuses = offers(any_coop, job_id)
        assert statuses.pop(winner) == "accepted"
        assert set(statuses.values()) == {"closed"}


async def test_the_others_are_told_who_took_it(coop: Coop) -> None:
    carol = coordinator(coop)
    bob, dan = riders(coop, "Bob", "Dan")
    [job] = post(coop, carol, "Boulangerie -> Oberkampf")
    act(coop, "accept", dan, job)
    await coop.tick()
    assert f"J-{job} was taken by Dan; your offer is closed." in texts(coop.inbox("bob"))
    assert refusal(coop, "accept", bob, job).key == "dispatch.already_taken"


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
        svc.set_away(session, rotation.bot.config, session.get_one(Member, bob), rotation.clock.now())
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


# --- moving a job -------------------------------------------------------------------------------


async def test_a_job_is_delivered_after_its_pickup_and_only_by_its_holder(coop: Coop) -> None:
    carol = coordinator(coop)
    bob, dan = riders(coop, "Bob", "Dan")
    [job] = post(coop, carol, "Shop -> Home")
    act(coop, "accept", bob, job)
    assert refusal(coop, "deliver", bob, job).key == "dispatch.pickup_first"
    refused = refusal(coop, "pickup", dan, job)
    assert isinstance(refused, NotAllowed)
    assert refused.params["name"] == "Bob"
    act(coop, "pickup", bob, job)
    assert refusal(coop, "release", bob, job).key == "dispatch.release_picked_up"
    act(coop, "deliver", carol, job)
    assert job_of(coop, job).status == "delivered"
    assert refusal(coop, "deliver", bob, job).key == "dispatch.job_delivered"
    await coop.tick()
    assert f"Carol marked J-{job} as delivered." in texts(coop.inbox("bob"))
    assert [kind for kind, _ in events(coop, job)] == ["created", "offered", "accepted", "picked_up", "delivered"]


async def test_a_delivery_records_the_riders_points_and_the_price_once(coop: Coop) -> None:
    carol = coordinator(coop)
    [bob] = riders(coop, "Bob")
    with coop.session() as session:
        actor = session.get_one(Member, carol)
        [(posted, _)] = svc.post_jobs(
            session, coop.bot.config, actor, [JobSpec("A", "B", price_cents=650)], coop.clock.now()
        )
        job = posted.id
    act(coop, "accept", bob, job)
    act(coop, "pickup", bob, job)
    act(coop, "deliver", bob, job)
    refusal(coop, "deliver", bob, job)
    with coop.session() as session:
        contributions = session.scalars(select(Contribution)).all()
        income = session.scalars(select(LedgerEntry)).all()
    assert [(c.member_id, c.kind, c.points_milli, c.source_ref) for c in contributions] == [
        (bob, "delivery", 1000, f"job:{job}")
    ]
    assert [(e.kind, e.amount_cents, e.source_ref) for e in income] == [("income", 650, f"job:{job}")]


async def test_failing_needs_the_holder_and_closes_the_job(coop: Coop) -> None:
    carol = coordinator(coop)
    [bob] = riders(coop, "Bob")
    [job] = post(coop, carol, "Shop -> Home")
    act(coop, "accept", bob, job)
    act(coop, "fail", bob, job, "shop closed")
    assert job_of(coop, job).status == "failed"
    await coop.tick()
    assert f"J-{job} failed (Bob): shop closed" in texts(coop.room("coordinators"))
    assert refusal(coop, "cancel", carol, job, "").key == "dispatch.job_failed"


async def test_a_coordinator_assigns_and_the_previous_holder_is_told(coop: Coop) -> None:
    carol = coordinator(coop)
    bob, dan = riders(coop, "Bob", "Dan")
    [job] = post(coop, carol, "Shop -> Home")
    act(coop, "accept", bob, job)
    with coop.session() as session:
        svc.assign(
            session,
            coop.bot.config,
            session.get_one(Member, carol),
            job,
            session.get_one(Member, dan),
            coop.clock.now(),
        )
    await coop.tick()
    assert job_of(coop, job).assignee_id == dan
    assert f"Carol gave J-{job} to Dan; it is no longer yours." in texts(coop.inbox("bob"))
    assert any(text.startswith(f"Carol assigned you a job: J-{job} Shop → Home") for text in texts(coop.inbox("dan")))


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
        already, _ = svc.set_available(session, coop.bot.config, member, coop.clock.now())
    assert already
    await coop.tick(minutes=coop.bot.config.dispatch.idle_answer_minutes)
    member = coop.get_member("bob")
    assert member.available
    assert member.available_since == since
    assert member.idle_asked_at is None
