"""Jobs as the co-op's riders and coordinators live them in chat."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, func, select

from coopbot.chat import Incoming, Outgoing
from coopbot.models import SeenEvent
from coopbot.services.members import accounts as members_svc
from tests.conftest import Coop

EXAMPLE = "/newjob Boulangerie Martin, 3 rue Paul Bert -> 12 rue Oberkampf by 12:30 price 6.50 note fragile"
EXAMPLE_LINE = "J-1 Boulangerie Martin, 3 rue Paul Bert → 12 rue Oberkampf · by 12:30 · €6.50 · note: fragile"


async def answer(coop: Coop, who: str, text: str = "", **kwargs: object) -> Outgoing:
    """The bot's reply to `who`, without the notices it sent others meanwhile."""
    return (await coop.replies(who, text, **kwargs))[0]


async def reply(coop: Coop, who: str, text: str) -> str:
    return (await answer(coop, who, text)).text


def texts(messages: list[Outgoing]) -> list[str]:
    return [m.text for m in messages]


async def crew(coop: Coop, *riders: str) -> str:
    """A coordinator, Carol, and riders who have said /available."""
    carol = coop.member("Carol", "coordinator")
    for name in riders:
        await coop.say(coop.member(name), "/available")
    return carol


async def test_a_posted_job_reaches_every_available_rider_with_buttons(coop: Coop) -> None:
    carol = await crew(coop, "Bob", "Dan")
    coop.member("Eve")  # not riding today
    posted = await reply(coop, carol, EXAMPLE)
    assert posted.startswith(f"Posted {EXAMPLE_LINE} — offered to the 2 available workers.")
    for rider in ("bob", "dan"):
        offer = coop.inbox(rider)[-1]
        assert offer.text == f"New job: {EXAMPLE_LINE}"
        assert [(b.label, b.command, b.emoji) for b in offer.buttons] == [
            ("Accept", "/accept J-1", "✅"),
            ("Decline", "/decline J-1", "❌"),
        ]
    assert not any(text.startswith("New job") for text in texts(coop.inbox("eve")))
    assert "Carol posted J-1." in texts(coop.room("coordinators"))


async def test_a_malformed_job_answers_with_the_form_and_an_example(coop: Coop) -> None:
    carol = await crew(coop, "Bob")
    refused = await reply(coop, carol, "/newjob Boulangerie Martin 12 rue Oberkampf")
    assert refused.startswith("A job needs a pickup and a dropoff separated by ->. Nothing was posted.")
    assert "Type: /newjob PICKUP -> DROPOFF [by 12:30] [price 6.50] [note TEXT]" in refused
    assert EXAMPLE in refused
    refused = await reply(coop, carol, "/newjob A -> B\nC -> D price six")
    assert refused.startswith("Line 2: six is not an amount")
    assert await reply(coop, carol, "/jobs") == "No open jobs."


async def test_several_jobs_pasted_at_once_are_all_posted(coop: Coop) -> None:
    carol = await crew(coop, "Bob")
    posted = await reply(coop, carol, "/newjob Shop A -> Home A\nShop B -> Home B by 18:00\n/newjob Shop C -> Home C")
    assert [line.split(" ")[1] for line in posted.splitlines() if line.startswith("Posted")] == ["J-1", "J-2", "J-3"]
    assert "Carol posted J-1, J-2, J-3." in texts(coop.room("coordinators"))


async def test_only_coordinators_post_jobs(coop: Coop) -> None:
    await crew(coop, "Bob")
    assert "Only coordinators and admins can use /newjob" in await coop.say("bob", "/newjob A -> B")


async def test_the_first_tap_wins_and_the_second_hears_who_took_it(coop: Coop) -> None:
    carol = await crew(coop, "Bob", "Dan")
    await coop.say(carol, "/newjob Shop -> Home")
    won = await answer(coop, "bob", button="/accept J-1")
    assert won.edit
    assert won.text.startswith("It's yours: J-1 Shop → Home")
    assert [b.command for b in won.buttons] == ["/pickup J-1", "/deliver J-1", "/release J-1"]
    assert "J-1 was taken by Bob; your offer is closed." in texts(coop.inbox("dan"))
    assert await reply(coop, "dan", "/accept J-1") == "J-1 was already taken by Bob."


async def test_two_platforms_accepting_at_the_same_instant_get_one_winner(any_coop: Coop) -> None:
    carol = await crew(any_coop)
    bot, now = any_coop.bot, any_coop.clock.now()
    with any_coop.session() as session:
        for name, platform, user in (("Tess", "telegram", "1001"), ("Max", "matrix", "@max:localhost")):
            member = members_svc.create_member(session, name, "member", now)
            members_svc.add_identity(session, member, platform, user, now, name)
    for platform, user in (("telegram", "1001"), ("matrix", "@max:localhost")):
        await bot.handle(Incoming(platform, user, user, True, "/available", event_id=f"{platform}:available"))
    for number in range(1, 6):
        await any_coop.say(carol, f"/newjob Shop {number} -> Home {number}")
        tess = Incoming("telegram", "1001", "1001", True, button=f"/accept J-{number}", event_id=f"tg:{number}")
        max_ = Incoming(
            "matrix", "@max:localhost", "!dm:localhost", True, text=f"!accept J-{number}", event_id=f"mx:{number}"
        )
        replies = await asyncio.gather(bot.handle(tess), bot.handle(max_))
        answers = sorted(reply[0].text.split(":")[0].split(" by ")[0] for reply in replies)
        assert answers == ["It's yours", f"J-{number} was already taken"], replies
        taker = "Tess" if replies[0][0].text.startswith("It's yours") else "Max"
        loser = replies[1] if taker == "Tess" else replies[0]
        assert loser[0].text == f"J-{number} was already taken by {taker}."


async def test_a_tap_that_lost_the_race_is_one_transaction_and_still_a_visit(any_coop: Coop) -> None:
    """The loser's refusal commits the update's receipt and when the rider was last seen, in
    the tap's own transaction: no rollback, no second transaction to write them again."""
    carol = await crew(any_coop, "Bob", "Dan")
    await any_coop.say(carol, "/newjob Shop -> Home")
    await any_coop.say("bob", "/accept J-1")
    any_coop.clock.advance(minutes=5)
    bot, ends = any_coop.bot, []
    engines = [bot.engine] + ([bot.loop_sessions.engine] if bot.loop_sessions is not None else [])
    listeners = [(engine, name, lambda *_, name=name: ends.append(name))
                 for engine in engines for name in ("begin", "commit", "rollback")]  # fmt: skip
    for engine, name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        tap = Incoming("console", "dan", "dan", True, button="/accept J-1", event_id="tap-1")
        [refused] = await bot.handle(tap)
    finally:
        for engine, name, listener in listeners:
            event.remove(engine, name, listener)
    assert refused.text == "J-1 was already taken by Bob."
    assert ends == ["begin", "commit"]
    with any_coop.session() as session:
        assert session.scalar(select(func.count()).where(SeenEvent.event_id == "tap-1")) == 1
        dan = members_svc.member_of(session, "console", "dan")
        assert dan is not None and dan.last_seen_at == any_coop.clock.now()
    assert await bot.handle(tap) == [], "the same update is answered once"


async def test_strangers_cannot_accept(coop: Coop) -> None:
    carol = await crew(coop, "Bob")
    await coop.say(carol, "/newjob Shop -> Home")
    assert "To join, ask a coordinator for an invite code" in await coop.say("mallory", "/accept J-1")
    assert "It's yours" in await coop.say("bob", "/accept")


async def test_a_job_is_picked_up_before_it_is_delivered(coop: Coop) -> None:
    carol = await crew(coop, "Bob", "Dan")
    await coop.say(carol, "/newjob Shop -> Home price 6,50")
    await coop.say("bob", "/accept J-1")
    assert await reply(coop, "dan", "/pickup J-1") == "J-1 is held by Bob: only they or a coordinator can change it."
    assert await reply(coop, "bob", "/deliver J-1") == (
        "J-1 is not picked up yet: type /pickup J-1 first, then /deliver J-1."
    )
    picked = await answer(coop, "bob", button="/pickup J-1")
    assert picked.text.startswith("Picked up: J-1")
    assert [b.command for b in picked.buttons] == ["/deliver J-1"]
    delivered = await reply(coop, "bob", "/deliver")
    assert delivered.startswith("J-1 delivered, thank you! Your points this period grow by 1.")
    assert await reply(coop, "bob", "/release J-1") == "J-1 is already delivered."


async def test_coordinators_see_one_short_line_per_change(coop: Coop) -> None:
    carol = await crew(coop, "Bob", "Dan", "Eve")
    before = len(coop.room("coordinators"))
    await coop.say(carol, "/newjob Shop -> Home")
    await coop.say("dan", "/decline J-1")
    await coop.say("bob", "/accept J-1")
    await coop.say("bob", "/pickup J-1")
    await coop.say("bob", "/deliver J-1")
    lines = texts(coop.room("coordinators"))[before:]
    assert sorted(lines) == sorted(
        ["Carol posted J-1.", "J-1 → Bob (accepted).", "J-1 picked up by Bob.", "J-1 delivered by Bob."]
    )


async def test_jobs_lists_ones_offers_and_ones_jobs_and_everything_for_coordinators(coop: Coop) -> None:
    carol = await crew(coop, "Bob", "Dan")
    await coop.say(carol, "/newjob Late shop -> Home by 18:00\nEarly shop -> Home by 10:00\nOther -> Place")
    await coop.say("bob", "/accept J-1")
    await coop.say("bob", "/accept J-2")
    bob = (await reply(coop, "bob", "/jobs")).splitlines()
    assert bob[0] == "Offered to you:"
    assert bob[1].startswith("• J-3 Other → Place")
    assert bob[2] == "Your jobs, soonest deadline first:"
    assert bob[3].startswith("• J-2 Early shop") and bob[3].endswith("— assigned to Bob")
    assert bob[4].startswith("• J-1 Late shop")
    await coop.say("dan", "/away")
    dan = await reply(coop, "dan", "/jobs")
    assert dan.splitlines() == [
        "Nothing is offered to you and you hold no job.",
        "You are away: type /available to get job offers.",
    ]
    everything = (await reply(coop, carol, "/jobs")).splitlines()
    assert everything[0] == "Open jobs (3):"
    assert [line.split(" — ")[-1] for line in everything[1:]] == ["assigned to Bob", "assigned to Bob", "offered"]


async def test_assign_and_cancel_tell_the_rider(coop: Coop) -> None:
    carol = await crew(coop, "Bob", "Dan")
    await coop.say(carol, "/newjob Shop -> Home")
    await coop.say("bob", "/accept J-1")
    assert await reply(coop, carol, "/assign J-1 Dan") == "J-1 is assigned to Dan, who is told."
    assert "Carol gave J-1 to Dan; it is no longer yours." in texts(coop.inbox("bob"))
    told = [m for m in coop.inbox("dan") if m.text.startswith("Carol assigned you a job: J-1")]
    assert [b.command for b in told[0].buttons] == ["/pickup J-1", "/deliver J-1", "/release J-1"]
    assert await reply(coop, carol, "/cancel J-1 customer called") == (
        "J-1 is cancelled; whoever held it or was offered it is told."
    )
    assert "Carol cancelled J-1, which you held. customer called" in texts(coop.inbox("dan"))
    assert await reply(coop, "dan", "/pickup J-1") == "J-1 was cancelled."
    assert "Only coordinators and admins can use /assign" in await coop.say("bob", "/assign J-1 Bob")


async def test_assigning_an_offered_job_closes_the_others_offers_not_the_assignees(coop: Coop) -> None:
    carol = await crew(coop, "Bob", "Dan")
    await coop.say(carol, "/newjob Shop -> Home")
    await coop.say(carol, "/assign J-1 Dan")
    assert "J-1 was taken by Dan; your offer is closed." in texts(coop.inbox("bob"))
    assert "J-1 was taken by Dan; your offer is closed." not in texts(coop.inbox("dan"))
    assert await reply(coop, "dan", "/accept J-1") == "J-1 is already yours. Type /jobs to see your jobs."


async def test_why_shows_the_rule_the_ranking_and_who_passed(coop: Coop) -> None:
    admin = coop.member("Ada", "admin")
    carol = await crew(coop)
    await coop.say(admin, "/available")
    for name in ("Bob", "Dan"):
        coop.clock.advance(minutes=5)
        await coop.say(coop.member(name), "/available")
    with coop.session() as session:
        from coopbot.services.polls import settings as settings_svc

        settings_svc.apply(session, coop.bot.config, "offer_policy", "rotation", coop.clock.now())
    await coop.say("ada", "/away")
    await coop.say(carol, "/newjob Shop -> Home")
    await coop.say("bob", "/decline J-1")
    await coop.tick(seconds=coop.bot.config.dispatch.offer_timeout)
    await coop.say("bob", "/accept J-1")
    why = (await reply(coop, "dan", "/why J-1")).splitlines()
    assert why[0] == "J-1 Shop → Home"
    assert why[1] == "Now: assigned to Bob. Its history:"
    assert why[2] == "• 09:10 posted by Carol; offer policy in force: one at a time, in turn (rotation)."
    assert why[3].startswith("• 09:10 offered to Bob alone for 2 min (rotation: fewest points")
    assert why[3].endswith("Ranking: 1. Bob 0 pts, idle 5 min; 2. Dan 0 pts, idle 0 min")
    assert why[4] == "• 09:10 Bob declined."
    assert why[5].endswith("Ranking: 1. Dan 0 pts, idle 0 min")
    assert why[6] == "• 09:12 Dan let the offer expire."
    assert why[7] == "• 09:12 everyone in the rotation had passed: offered to everyone available (2): Bob, Dan."
    assert why[8] == "• 09:12 Bob accepted."


async def test_fail_needs_a_reason(coop: Coop) -> None:
    carol = await crew(coop, "Bob")
    await coop.say(carol, "/newjob Shop -> Home")
    await coop.say("bob", "/accept J-1")
    assert await reply(coop, "bob", "/fail J-1") == (
        "That is not how /fail works. Type: /fail J-12 REASON (for example /fail J-12 shop closed)"
    )
    assert await reply(coop, "bob", "/fail J-1 shop closed") == (
        "J-1 is marked failed (shop closed). The coordinators are told."
    )


async def test_available_twice_keeps_ones_place_and_away_reminds_of_held_jobs(coop: Coop) -> None:
    carol = await crew(coop, "Bob")
    assert await reply(coop, "bob", "/available") == (
        "Noted, you are still available. Your place in the rotation is kept."
    )
    await coop.say(carol, "/newjob Shop -> Home")
    await coop.say("bob", "/accept J-1")
    assert await reply(coop, "bob", "/away") == (
        "You are away: no job offers until you type /available again.\n"
        "You still hold 1 job, J-1: deliver it, or type /release J-1 so someone else can take it."
    )


async def test_a_french_rider_is_offered_jobs_in_french(coop: Coop) -> None:
    carol = await crew(coop)
    await coop.say(coop.member("Chloé", handle="chloe"), "/lang fr")
    assert (await coop.say("chloe", "/dispo")).startswith("Vous êtes disponible")
    await coop.say(carol, "/newjob Épicerie -> Rue X prix 12,5")
    offer = coop.inbox("chloe")[-1]
    assert offer.text == "Nouvelle course\u00a0: J-1 Épicerie → Rue X · 12,50\u00a0€"
    assert [b.label for b in offer.buttons] == ["Accepter", "Refuser"]


async def test_unknown_jobs_and_bad_references_get_one_clear_sentence(coop: Coop) -> None:
    await crew(coop, "Bob")
    assert await reply(coop, "bob", "/why J-99") == "There is no job J-99. Type /jobs to see the open ones."
    assert await reply(coop, "bob", "/accept X-1") == "X-1 is not a job reference: write it like J-12."
    assert await reply(coop, "bob", "/accept") == "That is not how /accept works. Type: /accept J-12"
