"""A co-op with everything the public page might leak, and a server for its page.

`fill` gives the co-op members with Telegram and Matrix accounts, a member
who hides from the charts, a customer with an order, an open vote and a
secret one, a binding vote that changed the offer rule, and a closed month;
it returns every string the page must never show.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from sqlalchemy import select

from coopbot.models import Identity, Job, Member
from coopbot.services.members import accounts
from coopbot.web.public import add_public_routes
from tests.conftest import Coop

NOVEMBER_ENDS = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # 1 December 00:00 in Paris
#: Each member's accounts, as the platforms would give them.
ACCOUNTS = {
    "alice": [("telegram", "731955204", "Alice Wexford"), ("matrix", "@alice.wexford:example.org", "Alice W")],
    "bruno": [("telegram", "5550001117", "Bruno Kessler")],
    "chloé": [("matrix", "@chloe.varenne:matrix.example", "Chloé Varenne")],
    "dmitri": [("telegram", "6890112233", "Dmitri Hollis")],
}
CUSTOMER = "Boulangerie Quintavalle"
CUSTOMER_ADDRESS = "17 rue Oberkampf"
RECIPIENT = "Mme Zabłocka, 8 impasse des Lilas"


@dataclass
class Filled:
    #: Strings that must never appear on the page: names, accounts, the customer and their order.
    secrets: list[str] = field(default_factory=list)
    #: The binding poll that made the offer rule `rotation`, and the secret poll.
    rotation_poll: int = 0
    secret_poll: int = 0


def poll_number(reply: str) -> int:
    code = reply.split(" ", 1)[0]
    assert code.startswith("P-"), reply
    return int(code.removeprefix("P-"))


async def fill(coop: Coop) -> Filled:
    """A month of the co-op's life, closed, with something private of every kind in it."""
    filled = Filled()
    coop.member("Alice Wexford", "admin", handle="alice")
    coop.member("Bruno Kessler", "coordinator", handle="bruno")
    coop.member("Chloé Varenne", handle="chloé")
    coop.member("Dmitri Hollis", handle="dmitri")
    now = coop.clock.now()
    numbers = {handle: coop.member_id(handle) for handle in ACCOUNTS}
    with coop.session() as session:
        for handle, identities in ACCOUNTS.items():
            member = session.get_one(Member, numbers[handle])
            filled.secrets.append(member.name)
            for platform, external_id, display in identities:
                accounts.add_identity(session, member, platform, external_id, now, display)
                filled.secrets += [external_id, display]
        shop = accounts.create_customer(session, CUSTOMER, now, address=CUSTOMER_ADDRESS)
        accounts.add_identity(session, shop, "telegram", "4440009998", now, CUSTOMER)
        filled.secrets += [CUSTOMER, CUSTOMER_ADDRESS, RECIPIENT, "4440009998"]
        session.add(Job(pickup=CUSTOMER_ADDRESS, dropoff=RECIPIENT, price_cents=650, status="delivered",
                        assignee_id=numbers["chloé"], customer_id=shop.id, created_at=now, updated_at=now))  # fmt: skip
    filled.rotation_poll = poll_number(
        await coop.say("bruno", "/propose Offer jobs in rotation? --closes 1d --sets offer_policy=rotation")
    )
    filled.secret_poll = poll_number(await coop.say("bruno", "/propose Buy a cargo bike? --secret --closes 1d"))
    for handle in ("alice", "bruno", "chloé", "dmitri"):
        await coop.say(handle, f"/vote P-{filled.rotation_poll} agree")
    await coop.say("alice", f"/vote P-{filled.secret_poll} disagree")
    await coop.say("chloé", f"/vote P-{filled.secret_poll} agree")
    await coop.say("dmitri", "/hide")
    for handle, hours, kind in (("bruno", "10h", "admin"), ("chloé", "20h", "training"), ("dmitri", "5h", "admin")):
        await coop.say(handle, f"/log {hours} {kind} for the co-op")
    for code in ("C-1", "C-2", "C-3"):
        await coop.say("alice", f"/approve {code}")
    await coop.say("bruno", "/income 1000 restaurant contracts")
    await coop.say("bruno", "/expense 100 bike repairs")
    coop.clock.set(NOVEMBER_ENDS)
    await coop.tick()
    return filled


def identities(coop: Coop) -> list[str]:
    """Every account's external id the co-op holds (the console handles are names, listed too)."""
    with coop.session() as session:
        return list(session.scalars(select(Identity.external_id)))


#: The policy the web door serves every answer with: no script, styles from our own files only.
CSP = "default-src 'self'; script-src 'none'; style-src 'self'"


async def strict_policy(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CSP


@asynccontextmanager
async def public_site(coop: Coop) -> AsyncIterator[str]:
    """The public page of `coop` served on 127.0.0.1 (a port of its own) under the web door's
    Content-Security-Policy; yields its address."""
    app = web.Application()
    app.on_response_prepare.append(strict_policy)
    add_public_routes(app, coop.bot)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as client, client.get(url, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()
