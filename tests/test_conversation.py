"""The same conversation gives the same answers on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from tests.conftest import Coop

SCRIPT = [
    ("alice", "/invite coordinator"),
    ("bruno", "/join {code}"),
    ("bruno", "/invite"),
    ("chloe", "/join {code}"),
    ("chloe", "/join {code}"),
    ("dan", "/join {code}"),
    ("chloe", "/whoami"),
    ("chloe", "/members"),
    ("chloe", "/lang fr"),
    ("chloe", "/help"),
    ("bruno", "/role chloe admin"),
    ("alice", "/role chloe coordinator"),
    ("dan", "hello"),
    ("alice", "/acept J-1"),
]
CODE = re.compile(r"\b[A-Z0-9]{4}-[A-Z0-9]{4}\b")


async def play(coop: Coop) -> list[str]:
    coop.member("Alice", "admin")
    code = ""
    transcript = []
    for who, line in SCRIPT:
        text = await coop.say(who, line.format(code=code))
        found = CODE.search(text)
        if found:
            code = found.group(0)
        transcript.append(CODE.sub("CODE", text))
    return transcript


async def test_same_replies_on_every_database(any_coop: Coop, coop: Coop) -> None:
    assert await play(any_coop) == await play(coop)
