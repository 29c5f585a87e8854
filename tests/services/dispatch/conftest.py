"""What the dispatch tests share: a co-op on the rotation, riders, posted jobs, and reading them back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from coopbot.app import CoopBot
from coopbot.chat import Outgoing
from coopbot.clock import FakeClock
from coopbot.errors import CoopError
from coopbot.models import Job, JobEvent, Member, Offer
from coopbot.services.dispatch import jobs
from coopbot.services.dispatch.offers import set_available
from coopbot.services.dispatch.parsing import JobSpec
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
            set_available(session, coop.bot.config, member, coop.clock.now())
            ids.append(member.id)
        coop.clock.advance(minutes=1)
    return ids


def post(coop: Coop, coordinator: int, *lines: str) -> list[int]:
    with coop.session() as session:
        actor = session.get_one(Member, coordinator)
        specs = [JobSpec(pickup, dropoff) for pickup, dropoff in (line.split(" -> ", 1) for line in lines)]
        return [job.id for job, _ in jobs.post_jobs(session, coop.bot.config, actor, specs, coop.clock.now())]


def act(coop: Coop, fn_name: str, member_id: int, job_id: int, *extra: object) -> object:
    """Call one function of `dispatch.jobs` as `member_id`, in its own transaction."""
    with coop.session() as session:
        member = session.get_one(Member, member_id)
        fn = getattr(jobs, fn_name)
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
