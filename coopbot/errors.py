"""Our own exceptions: each one is a sentence the member will read.

Services raise these with an i18n key and parameters; the command router
turns them into a reply in the member's language in exactly one place
(`handlers.registry`), after rolling the transaction back.
"""

from __future__ import annotations

from typing import Any


class CoopError(Exception):
    """A refusal the member can act on: what was wrong and what to type."""

    def __init__(self, key: str, /, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r}, {self.params!r})"


class UsageError(CoopError):
    """The arguments were missing, extra or malformed."""


class NotAllowed(CoopError):
    """The member's role or status does not allow this."""


class NotFound(CoopError):
    """The referenced job, poll, member... does not exist."""


class Conflict(CoopError):
    """The thing changed under us: already taken, already closed..."""


class NotAMember(CoopError):
    """Someone who has not joined the co-op."""


class ConfigError(Exception):
    """A bad configuration file; the message names the key and why."""
