"""Decisions beyond one member one vote, through the real python-telegram-bot stack: a proxy
round and a vote weighed by colleges, from the ballot in a private chat to the result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.telegram.conftest import TOKEN_ENV, TelegramCoop, started, telegram_config
from tests.telegram.fake_bot_api import FakeBotApi, FakeUser


@pytest.fixture(autouse=True)
def ballot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOPBOT_SECRET", "telegram-decisions-key-0123456789")


@pytest.fixture
async def scic(fake_api: FakeBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TelegramCoop]:
    """A co-op voting by colleges: workers 50%, partners 30%, customers 20%."""
    monkeypatch.setenv(TOKEN_ENV, fake_api.token)
    config = telegram_config(fake_api, tmp_path / "coop.sqlite3")
    colleges = config.colleges.model_validate(
        {"weights": {"workers": 50, "partners": 30, "customers": 20}, "default": "workers", "customers": "customers"}
    )
    async with started(fake_api, config.model_copy(update={"colleges": colleges})) as running:
        yield running


def people(coop: TelegramCoop, *names: str) -> dict[str, FakeUser]:
    found = {}
    for number, name in enumerate(names, start=2001):
        found[name] = coop.api.user(number, name, started=True)
    return found


async def test_a_proxy_round_from_the_gift_to_the_result(coop: TelegramCoop) -> None:
    members = people(coop, "Alice", "Bob", "Chloé", "Dan")
    for name, user in members.items():
        coop.member(user, "coordinator" if name == "Alice" else "member")
    alice, bob, chloe, dan = members.values()
    assert "Your vote now goes to Chloé" in await coop.ask(dan, "/proxy Chloé")
    await coop.api.wait_message(chloe.id, "Dan gave you their vote")
    await coop.ask(alice, "/propose Buy winter tyres? --closes 2d", contains="P-1 is open")
    ballot = await coop.api.wait_message(chloe.id, "You also hold the vote of Dan")

    coop.api.press(chloe, ballot, label="🤝 For Dan")
    dans_ballot = await coop.api.wait_message(chloe.id, "By proxy, for Dan")
    coop.api.press(chloe, dans_ballot, label="👎 Disagree")
    await coop.api.wait_message(chloe.id, "Your vote for Dan on P-1 is recorded: Disagree.")
    await coop.api.wait_message(dan.id, "Chloé used your proxy on P-1")
    for user in (alice, bob, chloe):
        await coop.ask(user, "/vote P-1 agree", contains="is recorded")

    await coop.ask(alice, "/closepoll P-1", contains="P-1")
    result = await coop.api.wait_message(bob.id, "P-1 is closed")
    assert "Agree 3 · Abstain 0 · Disagree 1 · Block 0" in result["text"]
    assert "1 of these votes was cast by proxy." in result["text"]


async def test_a_vote_weighed_by_colleges_with_a_customer_voting(scic: TelegramCoop) -> None:
    members = people(scic, "Alice", "Bob", "Pia", "Louise")
    for name, user in members.items():
        scic.member(user, {"Alice": "admin", "Louise": "customer"}.get(name, "member"))
    alice, bob, pia, louise = members.values()
    assert "Pia now votes in the partners college." in await scic.ask(alice, "/college Pia partners")
    await scic.ask(alice, "/propose Open a second depot? --closes 2d", contains="P-1 is open")
    await scic.api.wait_message(louise.id, "asks: Open a second depot?")
    for user, choice in ((alice, "agree"), (bob, "disagree"), (pia, "agree"), (louise, "disagree")):
        await scic.ask(user, f"/vote P-1 {choice}", contains="is recorded")
    await scic.ask(alice, "/closepoll P-1", contains="P-1")
    result = (await scic.api.wait_message(louise.id, "P-1 is closed"))["text"]
    assert "• workers (50%): 2 of 2 voted · Agree 1 · Abstain 0 · Disagree 1 · Block 0" in result
    assert "• partners (30%): 1 of 1 voted" in result and "• customers (20%): 1 of 1 voted" in result
    # 50 × 1/2 + 30 × 1 + 20 × 0 = 55%: passed, where heads alone were 2 to 2.
    assert "Weighted by college: 55.00% agree" in result
    assert "Result: PASSED." in result
