"""Customers in the chat: invited, welcomed as customers, shown only what they can use,
and owning their data (/mydata, /leave) like members, orders included."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from sqlalchemy import select

from coopbot.models import Identity, Job, Member
from coopbot.services.members.accounts import add_identity, pseudonym
from coopbot.services.polls import voting
from handlers.registry import Commands
from tests.conftest import Coop
from tests.handlers.test_members import code_of
from tests.services.conftest import SECRET, open_poll

SHOP = "Boulangerie Martin"
ZOE = "Zoé Leclerc"
ZOE_TELEGRAM = "730000117"


def unzip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def help_lines(text: str) -> set[str]:
    return {line.split(" — ")[0] for line in text.splitlines() if line.startswith("/")}


def an_order(coop: Coop, shop: str, courier: str | None, status: str = "delivered") -> int:
    """An order of the customer `shop`, delivered (or not) by `courier`, at €6.50."""
    now = coop.clock.now()
    with coop.session() as session:
        job = Job(pickup="3 rue Paul Bert, 75011 Paris", dropoff="12 rue des Lilas", price_cents=650,
                  status=status, customer_id=coop.member_id(shop),
                  assignee_id=coop.member_id(courier) if courier else None, created_at=now, updated_at=now)
        session.add(job)
        session.flush()
        return job.id


def zoe_on_telegram(coop: Coop) -> str:
    zoe = coop.member(ZOE, handle="zoe")
    with coop.session() as session:
        add_identity(session, session.get_one(Member, coop.member_id(zoe)), "telegram", ZOE_TELEGRAM,
                     coop.clock.now(), "zoe_rides")  # fmt: skip
    return zoe


# --- joining ---------------------------------------------------------------------------------


async def test_a_coordinator_invites_a_customer_who_joins_from_their_own_chat(coop: Coop) -> None:
    carol = coop.member("Carol", "coordinator")
    invite = await coop.say(carol, "/invite customer")
    assert invite.startswith("Invite code for a new customer:")
    coop.console.names["shop"] = SHOP
    welcome = await coop.say("shop", f"/join {code_of(invite)}")
    assert welcome.startswith(f"Welcome, {SHOP}! You are now a customer of Coop Vélo")
    assert all(command in welcome for command in ("/order", "/orders", "/prices", "/help"))
    assert await coop.say("shop", "/start") == (
        f"Hello {SHOP}! You are a customer of Coop Vélo. "
        "Type /order to order a delivery, or /help to see what you can do."
    )
    assert "already a customer" in await coop.say("shop", "/join ABCD-EFGH")


async def test_a_customer_joining_from_a_french_chat_is_written_to_in_french(coop: Coop) -> None:
    carol = coop.member("Carol", "coordinator")
    code = code_of(await coop.say(carol, "/invite customer"))
    coop.console.names["shop"] = SHOP
    welcome = await coop.say("shop", f"/join {code}", language="fr")
    assert welcome.startswith(f"Bienvenue, {SHOP}\u202f! Vous êtes maintenant client·e de Coop Vélo")
    assert "Langue\u00a0: fr" in await coop.say("shop", "/whoami")


async def test_a_member_cannot_invite_a_customer(coop: Coop) -> None:
    bob = coop.member("Bob")
    assert "Only coordinators and admins can use /invite" in await coop.say(bob, "/invite customer")


async def test_whoami_tells_a_customer_what_they_are_and_no_members_number(coop: Coop) -> None:
    shop = coop.member(SHOP, "customer", handle="shop")
    whoami = await coop.say(shop, "/whoami")
    assert whoami.startswith(f"{SHOP}, customer. Language: en.")
    assert "Default pickup address: none" in whoami
    assert "#" not in whoami


# --- what a customer may do ----------------------------------------------------------------------


async def test_help_shows_a_customer_only_ordering_commands(coop: Coop, declared_commands: Commands) -> None:
    shop = coop.member(SHOP, "customer", handle="shop")
    bob = coop.member("Bob")
    for_customers = {f"/{cmd.name}" for cmd in declared_commands if cmd.role == "customer"}
    shown = help_lines(await coop.say(shop, "/help"))
    assert {"/help", "/lang", "/whoami", "/mydata", "/leave", "/notify", *for_customers} <= shown
    assert not shown & {"/available", "/jobs", "/vote", "/polls", "/join", "/members", "/share", "/announcements"}
    assert "There is no command /vote you can use" in await coop.say(shop, "/help vote")
    assert not help_lines(await coop.say(bob, "/help")) & for_customers


async def test_a_customer_cannot_ride_vote_or_list_the_members(coop: Coop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOPBOT_SECRET", SECRET)
    alice = coop.member("Alice", "admin")
    shop = coop.member(SHOP, "customer", handle="shop")
    poll = open_poll(coop, coop.member_id(alice), voting.PollSpec("Buy a cargo bike?", []))
    await coop.tick()  # the ballots and the room's notice go out
    assert await coop.say(shop, "/available") == "Only members can use /available. Type /help to see what you can do."
    assert await coop.say(shop, f"/vote P-{poll} agree") == (
        "Customers do not vote: only the co-op's members decide, one member, one vote."
    )
    assert "Only members can use /members" in await coop.say(shop, "/members")


async def test_members_does_not_list_customers(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    coop.member(SHOP, "customer", handle="shop")
    assert await coop.say(alice, "/members") == "1 active member:\n#1 Alice — admin"


async def test_role_never_turns_a_member_into_a_customer_nor_back(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    coop.member("Bob")
    coop.member(SHOP, "customer", handle="shop")
    refused = await coop.say(alice, "/role Bob customer")
    assert refused.startswith("Bob cannot change between member and customer: a customer is not a member")
    assert (await coop.say(alice, f'/role "{SHOP}" coordinator')).startswith(
        f"{SHOP} cannot change between member and customer"
    )


# --- their data -------------------------------------------------------------------------------


async def test_mydata_gives_a_customer_their_orders_with_the_couriers_first_name_only(coop: Coop) -> None:
    coop.member("Alice", "admin")
    zoe = zoe_on_telegram(coop)
    shop = coop.member(SHOP, "customer", handle="shop")
    order = an_order(coop, shop, zoe)
    [reply] = await coop.replies(shop, "/mydata")
    assert reply.text.startswith("Here is everything Coop Vélo holds about you") and "1 order" in reply.text
    assert reply.attachment is not None
    files = unzip(reply.attachment[1])
    rows = list(csv.DictReader(io.StringIO(files["orders.csv"])))
    assert [(r["code"], r["pickup"], r["dropoff"], r["state"], r["price"], r["courier"]) for r in rows] == [
        (f"J-{order}", "3 rue Paul Bert, 75011 Paris", "12 rue des Lilas", "delivered", "6.50", "Zoé")
    ]
    everything = "".join(files.values())
    assert ZOE_TELEGRAM not in everything and "zoe_rides" not in everything and "Leclerc" not in everything
    assert not {"contributions.csv", "votes.csv", "allocations.csv"} & set(files)
    assert json.loads(files["data.json"])["profile"][0]["role"] == "customer"


async def test_a_customer_leaves_and_their_orders_stay_in_the_books_anonymised(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    zoe = coop.member(ZOE, handle="zoe")
    shop = coop.member(SHOP, "customer", handle="shop")
    with coop.session() as session:
        session.get_one(Member, coop.member_id(shop)).address = "3 rue Paul Bert, 75011 Paris"
    number = coop.member_id(shop)
    delivered, under_way = an_order(coop, shop, zoe), an_order(coop, shop, zoe, "picked_up")
    asked = await coop.replies(shop, "/leave")
    assert asked[0].text.startswith("Closing your customer account with Coop Vélo is final")
    assert f"“former customer #{number}”" in asked[0].text
    assert "You have left Coop Vélo" in await coop.say(shop, "/leave confirm")
    last = coop.inbox(shop)[-1]
    assert last.text.startswith("Your customer account with Coop Vélo is closed.") and last.attachment is not None
    assert [m.text for m in coop.room("coordinators")] == [
        f"The customer {SHOP} (#{number}) has closed their account. Their orders stay in the books under a "
        "pseudonym; their name, address and accounts are erased once they have their data.",
        f"Customer #{number} left with 1 order on its way, J-{under_way}: it goes on as any job; cancel it with "
        f"/cancel J-{under_way} if it should not.",
    ]
    await coop.tick(seconds=5)
    with coop.session() as session:
        gone = session.get_one(Member, number)
        assert (gone.name, gone.address, gone.active) == (pseudonym(number), None, False)
        assert session.scalars(select(Identity).where(Identity.member_id == number)).all() == []
        kept = session.scalars(select(Job).where(Job.customer_id == number).order_by(Job.id)).all()
        assert [job.id for job in kept] == [delivered, under_way]
        assert all(job.pickup == pseudonym(number) and job.price_cents == 650 for job in kept)
    assert f"former customer #{number}: left the co-op" in await coop.say(alice, "/audit")


async def test_mydata_gives_a_customer_their_webhook_address_and_never_its_secret(coop: Coop) -> None:
    from coopbot.services.dispatch.webhooks import set_webhook

    shop = coop.member(SHOP, "customer", handle="shop")
    with coop.session() as session:
        secret = set_webhook(session, coop.bot.config, session.get_one(Member, coop.member_id(shop)), "https://shop.example/hook")
    [reply] = await coop.replies(shop, "/mydata")
    assert reply.attachment is not None
    files = unzip(reply.attachment[1])
    profile = json.loads(files["data.json"])["profile"][0]
    assert profile["webhook_url"] == "https://shop.example/hook"
    assert "webhook_secret" not in profile and secret not in "".join(files.values())
