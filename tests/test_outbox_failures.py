"""A message is tried a bounded number of times per kind of failure, then set
aside for a person: never retried forever, never dropped silently, and the
coordinators are told once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from coopbot.app import CoopBot
from coopbot.chat import Address, Outgoing, TransientSendError
from coopbot.cli import main
from coopbot.config import Config, load_config
from coopbot.models import Member, OutboxMessage
from coopbot.outbox import FAILED_PREFIX, TRANSIENT_FOR, UNEXPECTED_ATTEMPTS, Outbox, queue, renderer
from coopbot.services.members.accounts import member_of
from tests.conftest import Coop
from tests.outbox_sender import SendOnly
from tests.test_outbox import flaky_member


@dataclass
class Misbehaving(SendOnly):
    """A platform that fails every send in one way: `garbled` (it shows the message, then its
    answer cannot be read), `later` (429/5xx: nothing shown) or `broken_for` (chats whose
    sends raise, shown nowhere)."""

    how: str = "garbled"
    shown: list[tuple[str, str]] = field(default_factory=list)
    platform: str = "flaky"

    async def send(self, address: Address, message: Outgoing, key: str) -> str:
        if self.how == "later":
            raise TransientSendError("502 Bad Gateway")
        self.shown.append((address.chat_id, message.text))
        raise ValueError("Expecting value: line 1 column 1 (char 0)")  # the answer was not JSON


def bob_is_owed(coop: Coop, text: str, key: str = "offer:J-7") -> int:
    """Bob, reached on the misbehaving platform, is owed one message; returns its row id."""
    flaky_member(coop, "Bob", "b1")
    return owe(coop, "bob", text, key)


def owe(coop: Coop, handle: str, text: str, key: str) -> int:
    """`handle`, already reached on the misbehaving platform, is owed a message; returns its row id."""
    with coop.session() as session:
        member = member_of(session, "console", handle)
        assert member is not None
        flaky = next(i for i in member.identities if i.platform == "flaky")
        queue(session, key=key, address=Address("flaky", flaky.external_id, True), message=Outgoing(text),
              now=coop.clock.now(), member_id=member.id, identity_id=flaky.id)
        return session.scalars(select(OutboxMessage.id).where(OutboxMessage.key == key)).one()


def failed_at(coop: Coop, row_id: int) -> str:
    """The hour a message was set aside, as the coordinators' notice is keyed."""
    when = row(coop, row_id).failed_at
    assert when is not None
    return when.strftime("%Y-%m-%dT%H")


def row(coop: Coop, row_id: int) -> OutboxMessage:
    with coop.session() as session:
        found = session.get_one(OutboxMessage, row_id)
        session.expunge(found)
        return found


async def let_time_pass(coop: Coop, rounds: int, step: timedelta) -> None:
    for _ in range(rounds):
        await coop.bot.outbox.drain()
        coop.clock.advance(step)
    await coop.bot.outbox.drain()


async def test_an_unreadable_answer_gives_three_copies_at_most_then_the_message_is_set_aside(coop: Coop) -> None:
    transport = Misbehaving("garbled")
    coop.bot.add_transport(transport)
    coop.member("Alice", "coordinator")
    offer = bob_is_owed(coop, "Job J-7: 12 rue des Lilas, 14:00. Take it?")

    await let_time_pass(coop, rounds=12, step=timedelta(minutes=10))

    assert transport.shown == [("b1", "Job J-7: 12 rue des Lilas, 14:00. Take it?")] * UNEXPECTED_ATTEMPTS
    failed = row(coop, offer)
    assert (failed.status, failed.failure_kind, failed.unexpected_failures) == ("failed", "unexpected", 3)
    assert failed.failed_at is not None and "Expecting value" in (failed.last_error or "")
    told = [m.text for m in coop.room("coordinators")]
    assert told == [f"Message #{offer} to Bob (flaky) was set aside: sending it failed unexpectedly 3 times (it may "
                    f"have arrived all the same). `coopbot outbox failed` shows the error; `coopbot outbox retry "
                    f"{offer}` sends it again. Others set aside within the same hour are listed there too, without a "
                    "notice of their own."]


async def test_a_platform_that_keeps_saying_later_is_tried_for_a_day_then_the_message_is_set_aside(
    coop: Coop,
) -> None:
    coop.bot.add_transport(Misbehaving("later"))
    coop.member("Alice", "coordinator")
    share = bob_is_owed(coop, "Your share for 2026-10: 312.40 EUR", key="period:2026-10:share")

    await let_time_pass(coop, rounds=23, step=timedelta(hours=1))
    assert row(coop, share).status == "pending", "23 hours of 502s: still trying"
    assert coop.room("coordinators") == []

    await let_time_pass(coop, rounds=2, step=timedelta(hours=1))
    failed = row(coop, share)
    assert (failed.status, failed.failure_kind, failed.last_error) == ("failed", "transient", "502 Bad Gateway")
    assert failed.failing_since is not None and failed.failed_at is not None
    assert failed.failed_at - failed.failing_since >= TRANSIENT_FOR
    told = [m.text for m in coop.room("coordinators")]
    assert len(told) == 1 and told[0].startswith(f"Message #{share} to Bob (flaky) was set aside: the platform kept "
                                                 "answering “try again later” for 24 hours")
    assert "312.40" not in told[0], "the notice never repeats the message"


async def test_an_outage_that_sets_aside_many_messages_tells_the_coordinators_once_an_hour(coop: Coop) -> None:
    coop.bot.add_transport(Misbehaving("later"))
    coop.member("Alice", "coordinator")
    for n in range(30):
        flaky_member(coop, f"Rider{n}", f"r{n}")
        owe(coop, f"rider{n}", "Your share for 2026-10", key=f"period:2026-10:share:{n}")
    await let_time_pass(coop, rounds=26, step=timedelta(hours=1))
    with coop.session() as session:
        set_aside = session.scalars(select(func.count()).where(OutboxMessage.status == "failed")).one()
    assert set_aside == 30
    assert len(coop.room("coordinators")) == 1


#: How many more times the "buggy" renderer fails (-1: always).
BUGS = [0]


@renderer("buggy")
def _buggy(session: Session, config: Config, argument: str, row: OutboxMessage) -> Outgoing:
    if BUGS[0] != 0:
        BUGS[0] -= 1
        raise KeyError("allocation")
    return Outgoing(argument)


async def test_a_renderer_bug_counts_as_an_unexpected_failure(coop: Coop) -> None:
    coop.member("Alice", "coordinator")
    bob = coop.member("Bob")
    BUGS[0] = -1
    coop.bot.renderers.add(_buggy)
    with coop.session() as session:
        queue(session, key="share:bob", address=Address("console", bob, True), message=Outgoing(""),
              now=coop.clock.now(), member_id=coop.member_id(bob))
        session.execute(update(OutboxMessage).where(OutboxMessage.key == "share:bob")
                        .values(render="buggy:Your share"))
    await let_time_pass(coop, rounds=6, step=timedelta(minutes=10))
    assert coop.inbox(bob) == []
    with coop.session() as session:
        share = session.scalars(select(OutboxMessage).where(OutboxMessage.key == "share:bob")).one()
        assert (share.status, share.failure_kind) == ("failed", "unexpected")
        assert share.last_error == "KeyError('allocation')"
    assert len(coop.room("coordinators")) == 1


async def test_a_failed_notice_to_the_coordinators_tells_nobody(coop: Coop, monkeypatch: pytest.MonkeyPatch) -> None:
    """The coordinators' room is broken too: the notice about Bob's message fails in turn,
    and that failure queues nothing more."""
    transport = Misbehaving("garbled")
    coop.bot.add_transport(transport)
    coop.member("Alice", "coordinator")
    offer = bob_is_owed(coop, "Job J-7")

    async def broken(address: Address, message: Outgoing, key: str) -> str:
        raise RuntimeError("the console lost its terminal")

    monkeypatch.setattr(coop.console, "send", broken)
    await let_time_pass(coop, rounds=20, step=timedelta(minutes=10))
    with coop.session() as session:
        rows = session.execute(select(OutboxMessage.key, OutboxMessage.status).order_by(OutboxMessage.id)).all()
    assert [tuple(r) for r in rows] == [
        ("offer:J-7", "failed"),
        (f"{FAILED_PREFIX}unexpected:{failed_at(coop, offer)}:console:coordinators", "failed"),
    ]


async def test_a_sent_message_is_recorded_even_if_the_database_stumbles_and_never_sent_again(
    coop: Coop, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = coop.member("Bob")
    with coop.session() as session:
        queue(session, key="notice:keys", address=Address("console", bob, True),
              message=Outgoing("Van keys are at the shop"), now=coop.clock.now())
    outbox = coop.bot.outbox
    real = outbox._mark_sent
    stumbles = [1]

    def stumbling(sent: list[tuple[int, str]]) -> None:
        if stumbles[0]:
            stumbles[0] -= 1
            raise OperationalError("UPDATE outbox", {}, Exception("database is locked"))
        real(sent)

    monkeypatch.setattr(outbox, "_mark_sent", stumbling)
    for _ in range(3):
        await outbox.drain()
    assert [m.text for m in coop.inbox(bob)] == ["Van keys are at the shop"]
    with coop.session() as session:
        assert session.scalars(select(OutboxMessage.status)).all() == ["sent"]


# --- the operator's side: `coopbot outbox failed` and `coopbot outbox retry ID` ---------------


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[coop]\nname = "Coop Test"\n[database]\nurl = "sqlite:///{tmp_path / "c.sqlite3"}"\n')
    return path


async def failed_share(config_file: Path) -> tuple[int, int]:
    """Chloé's share failed on a garbled platform, and a notice to Bob was sent; their ids."""
    bot = CoopBot(load_config(config_file))
    now = datetime.now(UTC)
    try:
        transport = Misbehaving("garbled")
        bot.add_transport(transport)
        with bot.sessions() as session, session.begin():
            chloe = Member(name="Chloé", role="member", joined_at=now)
            session.add(chloe)
            session.flush()
            queue(session, key="period:2026-10:share:m1:flaky", address=Address("flaky", "c9", True),
                  message=Outgoing("Your share: 312.40 EUR"), now=now, member_id=chloe.id)
            queue(session, key="notice:bob", address=Address("flaky-ok", "b1", True), message=Outgoing("hi"),
                  now=now)
            session.execute(update(OutboxMessage).where(OutboxMessage.key == "notice:bob")
                            .values(status="sent"))
        outbox = Outbox(bot.sessions, bot.clock, bot.config, {"flaky": transport}, renderers=bot.renderers)
        for _ in range(UNEXPECTED_ATTEMPTS):
            await outbox.drain()
            with bot.sessions() as session, session.begin():  # the backoff has passed
                session.execute(update(OutboxMessage).values(next_attempt_at=now))
        with bot.sessions() as session:
            ids = dict(session.execute(select(OutboxMessage.key, OutboxMessage.id)).all())
        return ids["period:2026-10:share:m1:flaky"], ids["notice:bob"]
    finally:
        bot.dispose()


def statuses(config_file: Path) -> Counter[str]:
    bot = CoopBot(load_config(config_file))
    try:
        with bot.sessions() as session:
            return Counter(session.scalars(select(OutboxMessage.status)).all())
    finally:
        bot.dispose()


async def test_the_operator_lists_failed_messages_without_their_text_and_puts_one_back(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    share, sent = await failed_share(config_file)
    assert main(["--config", str(config_file), "outbox", "failed"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0] == "id\tfailed at\tto\tkind\tattempts\tlast error"
    fields = listing[1].split("\t")
    assert (fields[0], fields[2], fields[3], fields[4]) == (str(share), "Chloé (flaky)", "unexpected", "3")
    assert fields[5].startswith("ValueError('Expecting value")
    assert "312.40" not in "\n".join(listing)
    assert listing[2].startswith("1 failed;")

    for given, refusal in [
        ("abc", "“abc” is not a message number: type the ID that `coopbot outbox failed` lists"),
        ("0", "“0” is not a message number"),
        ("99999999999", "“99999999999” is not a message number"),
        ("4242", "There is no message #4242: type an ID that `coopbot outbox failed` lists."),
        (str(sent), f"Message #{sent} is sent, not failed: only the messages `coopbot outbox failed` lists"),
    ]:
        assert main(["--config", str(config_file), "outbox", "retry", given]) == 1
        assert refusal in capsys.readouterr().err
    assert statuses(config_file) == Counter({"failed": 1, "sent": 1, "pending": 1})  # + the coordinators' notice

    assert main(["--config", str(config_file), "outbox", "retry", f"#{share}"]) == 0
    assert capsys.readouterr().out == f"message {share} to Chloé (flaky) is queued again; the running bot sends it " \
                                      "within seconds\n"
    bot = CoopBot(load_config(config_file))
    try:
        with bot.sessions() as session:
            again = session.get_one(OutboxMessage, share)
            assert (again.status, again.attempts, again.unexpected_failures, again.failure_kind, again.failed_at) == (
                "pending", 0, 0, None, None)
    finally:
        bot.dispose()
    assert main(["--config", str(config_file), "outbox", "failed"]) == 0
    assert capsys.readouterr().out == "no failed messages\n"
