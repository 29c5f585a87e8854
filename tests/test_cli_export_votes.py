"""`coopbot export votes`: a closed poll's votes for the minutes; a secret poll's tally only."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.conftest import Coop
from tests.services.money.test_payouts import run


@pytest.fixture(autouse=True)
def ballot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOPBOT_SECRET", "export-votes-tests-key-0123456789")


@pytest.fixture
def coop(filed_coop: tuple[Coop, Path]) -> tuple[Coop, Path]:
    members = filed_coop[0]
    for name in ("Alice", "Bob", "Chloé", "Dan"):
        members.member(name, "coordinator" if name == "Alice" else "member")
    return filed_coop


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_a_disclosed_poll_gives_one_row_per_member_and_says_who_voted_by_proxy(
    coop: tuple[Coop, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    members, path = coop
    await members.say("dan", "/proxy Chloé")
    await members.say("alice", "/propose Buy winter tyres? --closes 1d")
    await members.say("bob", "/vote P-1 agree")
    await members.say("chloé", "/vote P-1 disagree for Dan")
    await members.tick(days=1)
    code, out, _ = run(capsys, path, "export", "votes", "--poll", "P-1")
    assert code == 0
    found = [(r["member"], r["choice"], r["cast_by_proxy_holder"]) for r in rows(out)]
    assert found == [("Bob", "Agree", ""), ("Dan", "Disagree", "Chloé")]


async def test_a_ranked_poll_gives_each_rank(coop: tuple[Coop, Path], capsys: pytest.CaptureFixture[str]) -> None:
    members, path = coop
    await members.say("alice", '/propose AGM? --ranked "Salle A" "Salle B" "Online" --closes 1d')
    await members.say("bob", "/vote P-1 3,1")
    await members.tick(days=1)
    out = run(capsys, path, "export", "votes", "--poll", "P-1")[1]
    assert [(r["choice"], r["rank"]) for r in rows(out)] == [("Online", "1"), ("Salle A", "2")]


async def test_a_secret_poll_gives_its_tally_and_nobody(
    coop: tuple[Coop, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    members, path = coop
    await members.say("alice", '/propose Hire? --options "Dana|Eli" --secret --closes 1d')
    await members.say("bob", "/vote P-1 2")
    await members.say("chloé", "/vote P-1 2")
    await members.tick(days=1)
    out = run(capsys, path, "export", "votes", "--poll", "P-1")[1]
    assert [(r["choice"], r["votes"]) for r in rows(out)] == [("Dana", "0"), ("Eli", "2")]
    assert "Bob" not in out and "Chloé" not in out


async def test_an_open_poll_is_not_exported(coop: tuple[Coop, Path], capsys: pytest.CaptureFixture[str]) -> None:
    members, path = coop
    await members.say("alice", "/propose Tyres? --closes 1d")
    code, out, err = run(capsys, path, "export", "votes", "--poll", "P-1")
    assert (code, out) == (1, "")
    assert err.startswith("P-1 is still open: its votes are exported once it closes")
