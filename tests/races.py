"""Many members doing the same thing at the same instant: the co-op's one-winner rules under load."""

from __future__ import annotations

import threading
from collections.abc import Callable

from coopbot.errors import Conflict


def race(members: list[int], act: Callable[[int], None]) -> tuple[list[int], list[Conflict]]:
    """Every member acts at the same instant, each from their own thread (and so their own
    session): who got through, and the refusals of the others. Anything else fails the test."""
    start = threading.Barrier(len(members))
    won: list[int] = []
    lost: list[Conflict] = []
    unexpected: list[BaseException] = []

    def attempt(member_id: int) -> None:
        try:
            start.wait()
            act(member_id)
            won.append(member_id)
        except Conflict as refused:
            lost.append(refused)
        except BaseException as exc:
            unexpected.append(exc)

    threads = [threading.Thread(target=attempt, args=(member_id,)) for member_id in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert unexpected == []
    return won, lost
