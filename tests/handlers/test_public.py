"""`/public on|off`: a member chooses whether the public page names them; nobody is named by default."""

from __future__ import annotations

from tests.conftest import Coop
from tests.web.public_coop import fetch, public_site
from tests.web.test_public_page import text_of


async def test_a_member_is_named_on_the_public_page_only_after_choosing_it(coop: Coop) -> None:
    coop.member("Alice", "admin")
    coop.member("Bruno")
    await coop.say("alice", "/propose Buy a cargo bike? --closes 1d")
    await coop.say("bruno", "/propose Paint the depot? --closes 1d")
    assert await coop.say("bruno", "/public") == (
        "The co-op's public page shows you as member #2, never by name or account. "
        "Type /public on to be named there. The page: the co-op has not opened its public page yet"
    )
    assert (await coop.say("bruno", "/public on")).startswith("The co-op's public page names you: Bruno.")
    async with public_site(coop) as site:
        _, _, body = await fetch(f"{site}/en")
    page = text_of(body)
    assert "Bruno" in page, "named, as he chose"
    assert "Alice" not in page and "member #1" in page, "Alice did not choose to be named"

    await coop.say("bruno", "/public off")
    async with public_site(coop) as site:
        _, _, body = await fetch(f"{site}/en")
    assert "Bruno" not in text_of(body)


async def test_a_word_that_is_not_on_or_off_changes_nothing(coop: Coop) -> None:
    coop.member("Bruno")
    assert await coop.say("bruno", "/public yes") == (
        "“yes” is not a choice here: type /public on to be named on the public page, "
        "or /public off to be shown by number."
    )
    assert "shows you as member #1" in await coop.say("bruno", "/public")
