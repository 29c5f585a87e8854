"""Chat commands as handlers declare them, and what a handler sees.

A handler module declares each command with `@command`: its name, its area,
the least role that may use it, whether it answers only in private. The bot
collects them at start (`Commands`), and `coopbot.router` hands each message
to one, with a `Context`: the member, the words, an open transaction, the
time. Handlers parse, call a service and word the answer; they hold no SQL.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from coopbot.chat import Incoming, MenuEntry, Outgoing
from coopbot.clock import Clock
from coopbot.config import Config
from coopbot.declared import Mark, Registry
from coopbot.errors import NotAllowed, UsageError
from coopbot.i18n import catalogue, t
from coopbot.models import Identity, Member
from coopbot.services.members.accounts import at_least
from coopbot.states import Role

if TYPE_CHECKING:
    from coopbot.db import UnitOfWork

PREFIXES = ("/", "!")

Reply = Outgoing | str | list[Outgoing] | None
HandlerFn = Callable[["Context"], Reply]


@dataclass(frozen=True)
class Command:
    name: str
    fn: HandlerFn
    area: str
    #: The least role that may use it; None lets strangers use it (/start, /join);
    #: "customer" is for customers alone (/order).
    role: str | None
    #: Every reply goes to the member's private chat, never a group.
    private: bool
    aliases: tuple[str, ...] = ()
    #: A members' command customers may use too (/lang, /mydata, /leave).
    customers: bool = False

    @property
    def help_key(self) -> str:
        return f"{self.area}.help.{self.name}"

    @property
    def usage_key(self) -> str:
        return f"{self.area}.usage.{self.name}"

    def allowed(self, member: Member | None) -> bool:
        """Customers are outside the members' ranks: they use their own commands and the
        few members' commands marked for them, and no member uses a customer's."""
        if self.role is None:
            return True
        if member is None:
            return False
        if member.role == Role.CUSTOMER:
            return self.role == Role.CUSTOMER or self.customers
        return self.role != Role.CUSTOMER and at_least(member, Role(self.role))

    def offered_to(self, member: Member | None) -> bool:
        """Whether /help lists it and a typo is corrected to it. A customer is offered only what
        is made for customers: the commands for anyone that serve newcomers and members (/join,
        /vote) would only mislead a shop that orders, though typed they still get an answer."""
        if member is not None and member.role == Role.CUSTOMER:
            return self.allowed(member) and (self.role == Role.CUSTOMER or self.customers)
        return self.allowed(member)

    def help_key_for(self, member: Member | None) -> str:
        """A customer reads what a shared command does for them where it differs (/why explains
        their order, not who was offered a job)."""
        if self.customers and member is not None and member.role == Role.CUSTOMER:
            key = f"customers.help.{self.name}"
            if key in catalogue("en"):
                return key
        return self.help_key


COMMAND: Mark[Command] = Mark("command", Command)


def command(
    name: str,
    *,
    area: str,
    role: str | None = "member",
    private: bool = False,
    aliases: tuple[str, ...] = (),
    customers: bool = False,
) -> Callable[[HandlerFn], HandlerFn]:
    """Declare a handler as `/name`; the bot that collects it (`Commands`) registers it."""

    def declare(fn: HandlerFn) -> HandlerFn:
        return COMMAND.put(fn, Command(name, fn, area, role, private, aliases, customers))

    return declare


class Commands(Registry[Command]):
    """The commands one bot answers: collected from the handlers at start (`handlers.collect_commands`)."""

    def __init__(self, functions: Iterable[HandlerFn] = ()) -> None:
        super().__init__(COMMAND, functions)

    def names_of(self, spec: Command) -> tuple[str, ...]:
        return (spec.name, *spec.aliases)

    def for_member(self, member: Member | None) -> list[Command]:
        """What `member` is offered (None: a stranger), as /help lists it: a customer's own
        commands (/order) first."""
        offered = [cmd for cmd in self if cmd.offered_to(member)]
        return sorted(offered, key=lambda cmd: cmd.role != Role.CUSTOMER)

    def menu(self) -> list[MenuEntry]:
        """The commands a platform's menu offers: those strangers and members may use (a
        menu is the same for everyone in a chat, so never a coordinator's command)."""
        return [MenuEntry(cmd.name, cmd.help_key) for cmd in self if cmd.role in (None, "member")]




@dataclass
class Context:
    """What a handler sees: the member, the words, a transaction, the time."""

    session: UnitOfWork
    config: Config
    clock: Clock
    incoming: Incoming
    member: Member | None
    identity: Identity | None
    lang: str
    command: str
    rest: str
    #: The bot's commands: what /help lists, and the form `usage` shows.
    commands: Commands
    args: list[str] = field(default_factory=list)
    now: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.now = self.clock.now()

    def t(self, key: str, /, **params: Any) -> str:
        return t(self.lang, key, **params)

    @property
    def me(self) -> Member:
        """The asking member; handlers with a role can rely on it."""
        if self.member is None:
            raise NotAllowed("registry.not_member")
        return self.member

    def usage(self) -> UsageError:
        """The error for malformed arguments: shows the expected form."""
        cmd = self.commands.lookup(self.command)
        form = t(self.lang, cmd.usage_key) if cmd else ""
        return UsageError("registry.usage", command=self.command, form=form)

    def expect_args(self, least: int, most: int | None = None) -> list[str]:
        if len(self.args) < least or (most is not None and len(self.args) > most):
            raise self.usage()
        return self.args


def parse(text: str) -> tuple[str, str] | None:
    """`/Cmd@bot rest` → ("cmd", "rest"); None when it is not a command."""
    text = text.strip()
    if len(text) < 2 or text[0] not in PREFIXES:
        return None
    head, _, rest = text[1:].partition(" ")
    name = head.split("@", 1)[0].split("\n", 1)[0].lower()
    if "\n" in head:
        rest = head.split("\n", 1)[1] + " " + rest
    if not name or not name.replace("_", "").isalnum():
        return None
    return name, rest.strip()


def addressee(text: str) -> str | None:
    """The bot a command is addressed to (`/cmd@name` → "name"), or None when it names none."""
    head = text.split(maxsplit=1)[0] if text.strip() else ""
    name = head.partition("@")[2].lower()
    return name or None


#: What `shlex.split` reads specially (quotes, the escape); where none is, it splits on its whitespace alone.
_SHELL_MARKS = re.compile(r"[\"'\\]")
_SHELL_SPACE = re.compile(r"[ \t\r\n]+")


def split_args(rest: str) -> list[str]:
    """The words of `rest`, quotes grouping them as a shell does.

    Words without quotes or backslashes are split as `shlex.split` would,
    without it: every tap on an offer is `/accept J-14`, and `shlex` cost
    about 4% of such a tap in a profile of `bench/dispatch.py` (SQLite, 200
    riders), more than the rest of building the `Context`."""
    if not rest:
        return []
    if _SHELL_MARKS.search(rest) is None:
        return [word for word in _SHELL_SPACE.split(rest) if word]
    try:
        return shlex.split(rest)
    except ValueError:
        return rest.split()


def as_list(reply: Reply) -> list[Outgoing]:
    if reply is None:
        return []
    if isinstance(reply, str):
        return [Outgoing(reply)]
    if isinstance(reply, Outgoing):
        return [reply]
    return list(reply)
