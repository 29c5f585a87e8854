"""Jobs' rules of the house: one winner per job, and a job moves to its end only in
order and only by its holder (or a coordinator), its points and price written once."""

from __future__ import annotations

from sqlalchemy import select

from coopbot.errors import Conflict, NotAllowed
from coopbot.models import Contribution, LedgerEntry, Member
from coopbot.services.dispatch import jobs as svc
from coopbot.services.dispatch.parsing import JobSpec
from tests.conftest import Coop
from tests.races import race
from tests.services.dispatch.conftest import act, coordinator, events, job_of, offers, post, refusal, riders, texts

# --- exactly one winner --------------------------------------------------------------------


def race_to_accept(coop: Coop, workers: list[int], job_id: int) -> tuple[list[int], list[Conflict]]:
    """Every worker accepts at the same instant, each from its own thread and session."""
    return race(workers, lambda member_id: act(coop, "accept", member_id, job_id))


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
