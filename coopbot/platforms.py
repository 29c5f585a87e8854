"""The chat platforms the co-op can be reached on, and what the core must know of each.

The core never names a platform: what differs between them (how long a
message may be and how that length is counted, what a member may type to
choose it, how an account is written, which rooms serve the co-op) is
declared here, by each platform. A platform is a package under
`coopbot.transports` whose `__init__` declares `PLATFORM = Platform(...)`
and a section in the configuration (a `PlatformSection`); its `__init__`
stays free of the platform's client library, so that the bot only loads the
clients it runs. Adding a platform is one new package and one section.

The console is the platform of last resort: the bot talks in the terminal
when no other is switched on, and every member has a console account on the
server. It is part of the core, so it is declared here.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from coopbot.splitting import Measure, utf16_units

if TYPE_CHECKING:
    from coopbot.app import CoopBot
    from coopbot.chat import Address, Transport
    from coopbot.config import Config, PlatformSection


@dataclass(frozen=True)
class Platform:
    name: str
    #: The name members read (`/whoami`): "Telegram".
    label: str
    #: The longest message, counted by `measure`: a longer text is split to fit.
    max_length: int
    measure: Measure = utf16_units
    #: Besides `name`, what a member may type to choose it (`/notify element`).
    words: tuple[str, ...] = ()
    #: `module:function` building the transport from (config, bot); imported only when it runs.
    builder: str = ""
    #: How an account id is written, for `coopbot member add --<name>`: pattern and a rule.
    account_pattern: str = r"\S+"
    account_rule: str = ""
    account_help: str = ""
    #: A member links at most one account here (the console lets many people share a server).
    one_account_each: bool = True
    #: Account ids can name a person, so leaving erases them (a console id is the member's number).
    personal_ids: bool = True

    def section(self, config: Config) -> PlatformSection | None:
        from coopbot.config import PlatformSection

        section = getattr(config, self.name, None)
        return section if isinstance(section, PlatformSection) else None

    def enabled(self, config: Config) -> bool:
        section = self.section(config)
        return section is not None and section.enabled

    def build(self, config: Config, bot: CoopBot) -> Transport:
        module, _, function = self.builder.partition(":")
        make: Callable[[Config, CoopBot], Transport] = getattr(importlib.import_module(module), function)
        return make(config, bot)

    def account_problem(self, external_id: str) -> str | None:
        """None when `external_id` is written as this platform writes accounts, else the rule."""
        if re.fullmatch(self.account_pattern, external_id):
            return None
        return self.account_rule


CONSOLE = Platform("console", "console", 4096, one_account_each=False, personal_ids=False)

#: What `/notify` stores for "every platform I linked" (the word predates a third platform).
EVERY = "both"


@cache
def known() -> dict[str, Platform]:
    """Every platform this installation has: the transport packages that declare one, and the console."""
    import coopbot.transports

    found: dict[str, Platform] = {}
    for module in pkgutil.iter_modules(coopbot.transports.__path__):
        declared = getattr(importlib.import_module(f"coopbot.transports.{module.name}"), "PLATFORM", None)
        if isinstance(declared, Platform) and declared.name != CONSOLE.name:
            found[declared.name] = declared
    return {**dict(sorted(found.items())), CONSOLE.name: CONSOLE}


def chat_platforms() -> list[Platform]:
    """The platforms a member chooses between with `/notify`: every one but the console."""
    return [p for p in known().values() if p is not CONSOLE]


def find(name: str) -> Platform:
    """The platform called `name`; the console's rules for a name no package declares."""
    return known().get(name, CONSOLE)


def live(config: Config) -> list[Platform]:
    """The platforms this deployment runs: those switched on, else the console."""
    return [p for p in chat_platforms() if p.enabled(config)] or [CONSOLE]


def label(name: str) -> str:
    platform = known().get(name)
    return platform.label if platform is not None else name


def by_word(word: str) -> Platform | None:
    """The platform a member means by `word` (`telegram`, `element`), if any."""
    word = word.lower()
    return next((p for p in chat_platforms() if word == p.name or word in p.words), None)


def rooms(config: Config, *, coordinators: bool) -> list[Address]:
    """The co-op's rooms (or its coordinators' rooms) on every live platform."""
    from coopbot.chat import Address

    found = []
    for platform in live(config):
        section = platform.section(config)
        if section is not None:
            found += [Address(platform.name, room, private=False) for room in section.room_ids(coordinators)]
        elif platform is CONSOLE:
            found.append(Address(CONSOLE.name, "coordinators" if coordinators else "coop", private=False))
    return found
