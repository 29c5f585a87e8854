"""Shared fixtures: a co-op on SQLite or PostgreSQL, a clock we control, and
a console conversation to talk to it as its members."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from coopbot.app import CoopBot
from coopbot.chat import Outgoing
from coopbot.clock import FakeClock, SystemClock
from coopbot.config import Config, DatabaseSection, load_config
from coopbot.db import transaction
from coopbot.models import Job, Member
from coopbot.services.members import accounts as members_svc
from coopbot.states import JobStatus
from coopbot.transports.console import ConsoleTransport, Conversation
from handlers import collect_commands
from handlers.registry import Commands

PG_ENV = "COOPBOT_TEST_DATABASE_URL"


def postgres_base_url() -> str:
    url = os.environ.get(PG_ENV, "")
    if not url:
        pytest.skip(f"PostgreSQL test: set {PG_ENV} (for example postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        pytest.skip(f"PostgreSQL test: {PG_ENV} does not answer ({type(exc).__name__})")
    return url


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema per test, dropped afterwards, so tests never see each other's rows."""
    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Runs the test on SQLite and again on PostgreSQL (skipped without it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'any-coop.sqlite3'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture(autouse=True)
def key_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Ballot keys go to a state folder of the test's own, never to the user's home."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


@pytest.fixture
def declared_commands() -> Commands:
    """Every command the handlers declare, collected as a bot does at start: a registry of
    the test's own, for tests that read the command list without running a bot."""
    return collect_commands()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'coop.sqlite3'}"


@pytest.fixture
def clock() -> FakeClock:
    # A Monday morning in Paris, early in the month.
    return FakeClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))


def forbid_worker_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, handing anything to a worker thread fails the test."""

    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a free database needs no worker thread")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)


class MovableClock(SystemClock):
    """The wall clock's pace (the outbox's pacing, the transports' timeouts) from a date the test sets."""

    def __init__(self, start: datetime) -> None:
        self.set(start)

    def set(self, when: datetime) -> None:
        self._offset = when - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


def make_config(url: str, **sections: object) -> Config:
    data: dict[str, object] = {"database": DatabaseSection(url=url).model_dump()}
    data.update(sections)
    return Config.model_validate(data)


class Coop:
    """A co-op on a real bot, talked to through the console transport."""

    def __init__(self, bot: CoopBot, clock: FakeClock) -> None:
        self.bot = bot
        self.clock = clock
        self.console = ConsoleTransport(out=None)
        bot.add_transport(self.console)
        self.chat = Conversation(bot, self.console)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with transaction(self.bot.sessions) as session:
            yield session

    def member(self, name: str, role: str = "member", *, handle: str | None = None) -> str:
        """Add a member with a console account; returns the handle to talk as them."""
        handle = handle or name.lower()
        with self.session() as session:
            member = members_svc.create_member(session, name, role, self.clock.now())
            members_svc.add_identity(session, member, "console", handle, self.clock.now(), name)
        self.console.names[handle] = name
        return handle

    def member_id(self, handle: str) -> int:
        with self.session() as session:
            found = members_svc.member_of(session, "console", handle)
            assert found is not None, f"{handle} is not a member"
            return found.id

    def get_member(self, handle: str) -> Member:
        with self.session() as session:
            found = members_svc.member_of(session, "console", handle)
            assert found is not None
            session.expunge(found)
            return found

    async def replies(self, who: str, text: str, **kwargs: object) -> list[Outgoing]:
        return await self.chat.say(who, text, **kwargs)  # type: ignore[arg-type]

    async def say(self, who: str, text: str, **kwargs: object) -> str:
        """Everything the bot showed after `who` said `text`, joined."""
        return "\n".join(m.text for m in await self.replies(who, text, **kwargs))

    def inbox(self, who: str) -> list[Outgoing]:
        """Every private message delivered to `who`, replies and notifications."""
        return [d.message for d in self.console.log if d.private and d.chat_id == who]

    def room(self, name: str = "coop") -> list[Outgoing]:
        return [d.message for d in self.console.log if not d.private and d.chat_id == name]

    def delivered_job(self, rider: int, price: int | None = 1250) -> Job:
        """A job `rider` has delivered, stored and detached (the ledger counts it from there)."""
        now = self.clock.now()
        with self.session() as session:
            job = Job(
                pickup="Boulangerie Louise",
                dropoff="12 rue des Lilas",
                price_cents=price,
                status="delivered",
                assignee_id=rider,
                created_at=now,
                updated_at=now,
            )
            session.add(job)
            session.flush()
            session.expunge(job)
            return job

    async def tick(self, delta: timedelta | None = None, **kwargs: float) -> None:
        """Let time pass, run what the scheduler would run, deliver what was queued."""
        if delta is not None or kwargs:
            self.clock.advance(delta, **kwargs)
        self.bot.scheduler.run_due()
        await self.bot.outbox.drain()


@pytest.fixture
async def coop(sqlite_url: str, clock: FakeClock) -> AsyncIterator[Coop]:
    bot = CoopBot(make_config(sqlite_url), clock=clock)
    yield Coop(bot, clock)
    bot.dispose()


@pytest.fixture
async def filed_coop(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Coop, Path]]:
    """A co-op with a config file, which the operator's and treasurer's commands read too."""
    path = tmp_path / "config.toml"
    path.write_text(f'[coop]\nname = "Coop Vélo"\n[database]\nurl = "sqlite:///{tmp_path / "c.sqlite3"}"\n')
    bot = CoopBot(load_config(path), clock=clock)
    yield Coop(bot, clock), path
    bot.dispose()


@pytest.fixture
async def any_coop(db_url: str, clock: FakeClock) -> AsyncIterator[Coop]:
    """The same co-op on SQLite and on PostgreSQL."""
    bot = CoopBot(make_config(db_url), clock=clock)
    yield Coop(bot, clock)
    bot.dispose()


ZONES = "A: 75001, 75002, Le Marais; B: 75011, Belleville; C: 93100, Montreuil"


@pytest.fixture
async def shop(sqlite_url: str, clock: FakeClock) -> AsyncIterator[Coop]:
    """A co-op with published zones and prices, a coordinator, a courier riding, and a bakery as customer."""
    config = make_config(
        sqlite_url,
        prices={"base": 4.0, "crossing": 2.5, "zones": ZONES},
        orders={"quote_valid_minutes": 15, "proof": "code"},
    )
    async for coop in open_shop(config, clock):
        yield coop


@pytest.fixture
def proof() -> str:
    """What proves a delivery in `photo_shop`; a test may parametrize it."""
    return "photo"


@pytest.fixture
async def photo_shop(sqlite_url: str, clock: FakeClock, tmp_path: Path, proof: str) -> AsyncIterator[Coop]:
    """The same shop, where a photo of the delivery proves it (kept in the test's own folder)."""
    config = make_config(
        sqlite_url,
        prices={"base": 4.0, "crossing": 2.5, "zones": ZONES},
        orders={"proof": proof, "photo_folder": str(tmp_path / "proof-photos")},
    )
    async for coop in open_shop(config, clock):
        yield coop


async def open_shop(config: Config, clock: FakeClock) -> AsyncIterator[Coop]:
    bot = CoopBot(config, clock=clock)
    coop = Coop(bot, clock)
    coop.member("Chloé", "coordinator")
    coop.member("Ana Lopez")
    coop.member("Boulangerie Martin", "customer", handle="martin")
    coop.member("Fleurs Rose", "customer", handle="rose")
    with coop.session() as session:
        bakery = session.get_one(Member, coop.member_id("martin"))
        bakery.address = "3 rue Paul Bert, 75011"
    await coop.say("ana lopez", "/available")
    yield coop
    bot.dispose()


def job_status(coop: Coop, job_id: int) -> JobStatus:
    with coop.session() as session:
        return session.get_one(Job, job_id).status


def delivery_code(text: str) -> str:
    found = re.search(r"Delivery code: ([0-9]{4})", text)
    assert found, text
    return found.group(1)
