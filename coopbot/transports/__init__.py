"""The chat platforms' packages (see `coopbot.platforms`), and what a running transport tells the web door.

`Connected` is kept here rather than in `coopbot.chat.Transport` so that a
transport written before it still runs: the web door's `/readyz` counts a
transport that does not say as not connected. This module is imported by
`coopbot --help` (the platforms are found through it), so it stays free of
any client library.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Connected(Protocol):
    """A transport that can say whether it is talking to its platform right now."""

    @property
    def connected(self) -> bool: ...
