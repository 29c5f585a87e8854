"""What the poll tests share: a server key in the environment, members, and a poll opened directly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coopbot.models import Member
from coopbot.services.polls import voting
from tests.conftest import Coop

SECRET = "a-test-ballot-key-that-is-long-enough"


@pytest.fixture
def ballot_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server key from the environment, so no key file is written where a test runs."""
    monkeypatch.setenv("COOPBOT_SECRET", SECRET)
    yield


def members(coop: Coop, count: int) -> list[int]:
    return [coop.member_id(coop.member(f"M{n}", "member")) for n in range(count)]


def open_poll(coop: Coop, proposer: int, spec: voting.PollSpec) -> int:
    with coop.session() as session:
        return voting.create(session, coop.bot.config, session.get_one(Member, proposer), spec, coop.clock.now()).id
