"""A customer is an account of the co-op, not a member: never counted, offered work,
sent a ballot or an announcement, nor given a share."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from coopbot.errors import NotAllowed, UsageError
from coopbot.models import Member, OutboxMessage, Poll
from coopbot.services.announcements import announce
from coopbot.services.dispatch.offers import available_members, set_available
from coopbot.services.members import accounts
from coopbot.services.money.periods import current_period
from coopbot.services.money.work import close_work
from coopbot.services.polls import voting
from tests.conftest import Coop
from tests.services.conftest import open_poll
from tests.services.dispatch.conftest import coordinator, offers, post, riders


def customer(coop: Coop, name: str = "Boulangerie Martin", handle: str = "shop") -> int:
    """A customer with a console account; their row says available, as a careless import might."""
    member_id = coop.member_id(coop.member(name, "customer", handle=handle))
    with coop.session() as session:
        session.get_one(Member, member_id).available = True
    return member_id


def messages_to(coop: Coop, member_id: int) -> list[str]:
    with coop.session() as session:
        return list(session.scalars(select(OutboxMessage.key).where(OutboxMessage.member_id == member_id)))


async def test_a_customer_is_not_one_of_the_coops_active_members(any_coop: Coop) -> None:
    alice = any_coop.member_id(any_coop.member("Alice", "admin"))
    shop = customer(any_coop)
    with any_coop.session() as session:
        assert [m.id for m in accounts.active_members(session)] == [alice]
        assert [m.id for m in accounts.active_customers(session)] == [shop]
        assert [m.id for m in accounts.every_member(session)] == [alice]
        assert [m.id for m in accounts.every_customer(session)] == [shop]


async def test_a_customer_is_never_offered_a_job(coop: Coop) -> None:
    carol = coordinator(coop)
    [bob] = riders(coop, "Bob")
    shop = customer(coop)
    [job] = post(coop, carol, "Shop -> Home")
    await coop.tick()
    assert offers(coop, job) == {bob: "open"}
    with coop.session() as session:
        assert [m.id for m in available_members(session)] == [bob]
    assert messages_to(coop, shop) == []


async def test_a_customer_cannot_say_they_are_available(coop: Coop) -> None:
    shop = customer(coop)
    with coop.session() as session, pytest.raises(NotAllowed) as refused:
        set_available(session, coop.bot.config, session.get_one(Member, shop), coop.clock.now())
    assert refused.value.key == "customers.no_work"


async def test_a_customer_does_not_count_towards_a_polls_quorum_nor_gets_a_ballot(
    coop: Coop, ballot_env: None
) -> None:
    alice = coop.member_id(coop.member("Alice", "admin"))
    bob = coop.member_id(coop.member("Bob"))
    shop = customer(coop)
    poll = open_poll(coop, alice, voting.PollSpec("Buy a cargo bike?", []))
    assert not any(key.startswith(f"poll:{poll}:") for key in messages_to(coop, shop))
    with coop.session() as session:
        voting.vote(session, coop.bot.config, session.get_one(Member, alice), f"P-{poll}", "agree", coop.clock.now())
        voting.vote(session, coop.bot.config, session.get_one(Member, bob), f"P-{poll}", "agree", coop.clock.now())
        # Both members voted: the proposer may close early, the customer is nobody waited for.
        voting.close_early(session, coop.bot.config, session.get_one(Member, alice), f"P-{poll}", coop.clock.now())
        result = session.get_one(Poll, poll).result
    assert result["active"] == 2
    assert messages_to(coop, shop) == []


async def test_a_customer_cannot_vote(coop: Coop, ballot_env: None) -> None:
    alice = coop.member_id(coop.member("Alice", "admin"))
    shop = customer(coop)
    poll = open_poll(coop, alice, voting.PollSpec("Buy a cargo bike?", []))
    with coop.session() as session, pytest.raises(NotAllowed) as refused:
        voting.vote(session, coop.bot.config, session.get_one(Member, shop), f"P-{poll}", "agree", coop.clock.now())
    assert refused.value.key == "customers.no_vote"


async def test_an_announcement_to_every_member_does_not_reach_customers(coop: Coop) -> None:
    carol = coordinator(coop)
    coop.member("Bob")
    shop = customer(coop)
    with coop.session() as session:
        author = session.get_one(Member, carol)
        queued = announce.announce(session, coop.bot.config, author, "General meeting on Friday", coop.clock.now())
        assert queued.members == 2
        announcement = queued.announcement
        assert not announce.addressed_to(announcement, session.get_one(Member, shop))
    assert messages_to(coop, shop) == []


async def test_a_customer_is_not_in_the_periods_work_and_gets_no_share(coop: Coop) -> None:
    bob = coop.member_id(coop.member("Bob"))
    customer(coop)
    with coop.session() as session:
        period = current_period(session, coop.bot.config, coop.clock.now())
        assert [worker.member_id for worker in close_work(session, period.id)] == [bob]


async def test_a_coordinator_invites_a_customer_a_member_cannot(coop: Coop) -> None:
    carol = coordinator(coop)
    bob = coop.member_id(coop.member("Bob"))
    with coop.session() as session:
        code = accounts.create_invite(session, session.get_one(Member, carol), "customer", coop.clock.now())
        shop = accounts.redeem_invite(session, code, "telegram", "4242", "Boulangerie Martin", coop.clock.now(), "fr")
        assert (shop.role, shop.language) == ("customer", "fr")
        with pytest.raises(NotAllowed):
            accounts.create_invite(session, session.get_one(Member, bob), "customer", coop.clock.now())


async def test_no_role_change_turns_a_member_into_a_customer_or_back(coop: Coop) -> None:
    alice = coop.member_id(coop.member("Alice", "admin"))
    bob = coop.member_id(coop.member("Bob"))
    shop = customer(coop)
    with coop.session() as session:
        admin = session.get_one(Member, alice)
        for target, role in ((bob, "customer"), (shop, "member"), (shop, "admin")):
            with pytest.raises(NotAllowed) as refused:
                accounts.set_role(session, admin, session.get_one(Member, target), role, coop.clock.now())
            assert refused.value.key == "customers.role_fixed"


async def test_a_customers_address_is_one_clean_line(coop: Coop) -> None:
    with coop.session() as session:
        shop = accounts.create_customer(session, "Boulangerie Martin", coop.clock.now(),
                                        address="  3 rue Paul Bert,\n 75011 Paris ", language="FR")  # fmt: skip
        assert (shop.address, shop.language, shop.role) == ("3 rue Paul Bert, 75011 Paris", "fr", "customer")
        with pytest.raises(UsageError) as refused:
            accounts.create_customer(session, "Chez Léa", coop.clock.now(), address="  ")
        assert refused.value.key == "customers.address_empty"
