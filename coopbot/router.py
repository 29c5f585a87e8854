"""The command router: prefixes, roles, one transaction a message, and errors turned into words.

Every platform hands an `Incoming` to `Router.handle`; every handler gets a
`Context` with an open transaction. A handler's writes are committed only if
it returns; any refusal (`CoopError`) rolls them back and becomes one
sentence in the member's language. This is the only place that happens.
A handler that refuses before writing anything may answer with the sentence
instead of raising (`/accept`, for the taps that lose a race): the update's
receipt and the member's visit are then committed in the message's one
transaction, instead of rolled back and written again in a second one.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import NamedTuple

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from coopbot import metrics
from coopbot.chat import Incoming, Outgoing
from coopbot.clock import Clock
from coopbot.config import Config
from coopbot.errors import CoopError
from coopbot.i18n import normalise_language, t
from coopbot.models import Identity, Member
from coopbot.outbox_rows import took_queued
from coopbot.states import Role
from coopbot.storage import arrive, member_by_account
from handlers.registry import Command, Commands, Context, addressee, as_list, parse, split_args

log = logging.getLogger(__name__)

MAX_TEXT = 4000
#: A photo sent in a private chat without a command is a courier's proof of delivery: the
#: handler reads the photo itself (`ctx.incoming.photo`), whatever the platform.
PHOTO_COMMAND = "/deliver"

Sessions = Callable[[], AbstractContextManager[Session]]


class Refused(Exception):
    """A handler's refusal, carried out of its transaction so that it rolls back whole."""

    def __init__(self, error: CoopError, lang: str, command: Command) -> None:
        super().__init__(error.key)
        self.error = error
        self.lang = lang
        self.command = command


class Route(NamedTuple):
    """What a message asks for, read from its text alone, before anything is read from the database."""

    parsed: tuple[str, str] | None
    #: The command it runs, if its sender may use it; None for an unknown one or none.
    command: Command | None
    #: A photo without a command, in a private chat: read as `PHOTO_COMMAND` if a member sent it.
    photo: bool = False
    #: `/cmd@OtherBot`: another bot's command, in a group the bots share.
    elsewhere: bool = False


class Busy(Exception):
    """Another connection holds SQLite's write lock; nothing was written."""


def is_busy(exc: OperationalError) -> bool:
    return "database is locked" in str(exc.orig) or "database is busy" in str(exc.orig)


class Router:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        clock: Clock,
        *,
        commands: Commands,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.clock = clock
        self.commands = commands
        self._roles: dict[str, tuple[Role, ...]] = {}
        #: Called once a command's transaction has committed messages to the outbox.
        self.on_queued = on_queued

    def handle(self, incoming: Incoming, *, sessions: Sessions | None = None) -> list[Outgoing]:
        """Answer one message; never half-writes, and never raises but `Busy`.

        `sessions` may be a factory whose SQLite connection does not wait for the
        write lock (`LoopSessions`): then a held lock raises `Busy`, with nothing
        written, for the caller to answer where waiting blocks nobody. Each update
        is counted for `/metrics` by platform and outcome, never by its text.
        """
        started = time.perf_counter()
        outcome = ["busy"]
        try:
            return self._handle(incoming, sessions, outcome)
        finally:
            metrics.observe_update(incoming.platform, outcome[0], time.perf_counter() - started)

    def _handle(self, incoming: Incoming, sessions: Sessions | None, outcome: list[str]) -> list[Outgoing]:
        lang: str = self.config.coop.default_language
        route = self._route(incoming)
        try:
            with (sessions or self.sessions)() as session:
                try:
                    with session.begin():
                        arrived = self._arrive(session, incoming, route)
                        if arrived is None:
                            outcome[0] = "duplicate"
                            return []
                        identity, member = arrived
                        lang = self._language(member, incoming)
                        replies = self._answer(session, incoming, identity, member, lang, route)
                    if took_queued(session):
                        self.on_queued()
                    outcome[0] = "answered"
                    return replies
                except Refused as refused:
                    # The handler's writes are rolled back; the visit itself still counts.
                    took_queued(session)
                    with session.begin():
                        identity, _member = self._arrive(session, incoming, route) or (None, None)
                        if identity is not None:
                            self._reach(identity)
                    error = refused.error
                    answer = Outgoing(t(refused.lang, error.key, **error.params))
                    outcome[0] = "refused"
                    return self._shape(incoming, refused.command, [answer])
        except OperationalError as exc:
            if sessions is not None and is_busy(exc):
                raise Busy from exc
            outcome[0] = "failed"
            return self._failed(incoming, lang)
        except Exception:
            outcome[0] = "failed"
            return self._failed(incoming, lang)

    @staticmethod
    def _failed(incoming: Incoming, lang: str) -> list[Outgoing]:
        # Never the text: it may be a secret vote, and the log must not link it to anyone.
        parsed = parse(incoming.command_text[:MAX_TEXT])
        log.exception(
            "unexpected error handling %s event %s (command %s)",
            incoming.platform, incoming.event_id, parsed[0] if parsed else "-",
        )
        return [Outgoing(t(lang, "registry.internal_error"))]

    def language_of(self, incoming: Incoming) -> str:
        with self.sessions() as session:
            return self._language(self._who(session, incoming)[1], incoming)

    def _who(self, session: Session, incoming: Incoming) -> tuple[Identity | None, Member | None]:
        """The account and the active member behind a message; (None, None) for strangers."""
        return self._active(member_by_account(session, incoming.platform, incoming.user_id), incoming)

    @staticmethod
    def _active(member: Member | None, incoming: Incoming) -> tuple[Identity | None, Member | None]:
        if member is None or not member.active:
            return None, None
        identity = next(
            i for i in member.identities if i.platform == incoming.platform and i.external_id == incoming.user_id
        )
        return identity, member

    def _arrive(
        self, session: Session, incoming: Incoming, route: Route
    ) -> tuple[Identity | None, Member | None] | None:
        """Record the update's id, find who sent it, and note when they were last seen (if the
        message runs a command they may use); None if it was handled before (a replay after a
        restart).

        This starts the transaction, with the receipt, before anything is read: `LoopSessions`
        checks then whether the members it kept are still what the database holds. On PostgreSQL
        the three are one statement (`coopbot.storage.arrival`).
        """
        touching = self._allowed_roles(route.command) if route.command is not None and not route.elsewhere else ()
        arrival = arrive(session, incoming.platform, incoming.event_id, incoming.user_id, self.clock.now(), touching)
        if not arrival.fresh:
            # A replay after a crash, or a platform counting its ids from 1 again: either way
            # worth seeing, since nothing is answered. Never the text (it may be a secret vote).
            log.warning("update %s on platform %s was already handled; ignored", incoming.event_id, incoming.platform)
            return None
        return self._active(arrival.member, incoming)

    def _route(self, incoming: Incoming) -> Route:
        text = incoming.command_text[:MAX_TEXT]
        parsed = parse(text)
        if parsed is None:
            if incoming.photo is not None and incoming.is_private:
                return Route(parse(PHOTO_COMMAND), self.commands.lookup(PHOTO_COMMAND[1:]), photo=True)
            return Route(None, None)
        to = addressee(text)
        if to is not None and to != (incoming.bot_name or "").lower():
            return Route(parsed, None, elsewhere=True)
        return Route(parsed, self.commands.lookup(parsed[0]))

    def _allowed_roles(self, command: Command) -> tuple[Role, ...]:
        """The roles that may use `command` (`Command.allowed` asks the member's role only)."""
        roles = self._roles.get(command.name)
        if roles is None:
            roles = self._roles[command.name] = tuple(role for role in Role if command.allowed(Member(role=role)))
        return roles

    def _language(self, member: Member | None, incoming: Incoming) -> str:
        if member is not None and member.language:
            return member.language
        return normalise_language(incoming.language) or self.config.coop.default_language

    def _answer(
        self,
        session: Session,
        incoming: Incoming,
        identity: Identity | None,
        member: Member | None,
        lang: str,
        route: Route,
    ) -> list[Outgoing]:
        parsed, cmd = route.parsed, route.command
        if route.photo and member is None:
            parsed = None
        elif route.photo and (cmd is None or not cmd.allowed(member)):
            return [Outgoing(t(lang, "registry.photo_not_read"))]
        if parsed is None:
            if member is None and incoming.is_private:
                return [Outgoing(t(lang, "registry.how_to_join", coop=self.config.coop.name))]
            if member is not None and incoming.is_private and incoming.button is None:
                return [Outgoing(t(lang, "registry.not_a_command"))]
            return []
        name, rest = parsed
        if route.elsewhere:
            return []  # `/cmd@OtherBot`: another bot's command, in a group the bots share
        if cmd is None:
            return [Outgoing(self._unknown(name, member, lang))]
        if not cmd.allowed(member):
            if member is None:
                return [Outgoing(t(lang, "registry.how_to_join", coop=self.config.coop.name))]
            return [Outgoing(t(lang, "registry.role_needed", command=name, who=t(lang, f"roles.plural_{cmd.role}")))]
        if identity is not None:
            self._reach(identity)  # and when they were last seen is written (`_arrive`)
        ctx = Context(
            session, self.config, self.clock, incoming, member, identity, lang, name, rest, self.commands,
            split_args(rest),
        )
        try:
            replies = as_list(cmd.fn(ctx))
        except CoopError as err:
            raise Refused(err, ctx.lang, cmd) from err
        return self._shape(incoming, cmd, replies)

    @staticmethod
    def _shape(incoming: Incoming, cmd: Command, replies: list[Outgoing]) -> list[Outgoing]:
        """Private commands answer privately; a button pressed in a private chat answers on its own
        message. In a group the message is everyone's (the weekly plan's sign-up buttons): the
        presser's answer is their own, and the transport shows it to them alone where it can."""
        if cmd.private:
            replies = [Outgoing(r.text, r.buttons, True, r.edit, r.attachment) for r in replies]
        if incoming.button is not None and incoming.is_private and replies and not replies[0].private:
            first = replies[0]
            replies[0] = Outgoing(first.text, first.buttons, first.private, True, first.attachment)
        return replies

    @staticmethod
    def _reach(identity: Identity) -> None:
        """Writing to the bot proves the account is reachable again."""
        if not identity.reachable:
            identity.reachable = True
            identity.unreachable_since = None

    def _unknown(self, name: str, member: Member | None, lang: str) -> str:
        usable = [cmd.name for cmd in self.commands.for_member(member)]
        close = difflib.get_close_matches(name, usable, n=1, cutoff=0.6)
        shown = name[:30]
        if close:
            return t(lang, "registry.unknown_suggest", command=shown, suggestion=close[0])
        return t(lang, "registry.unknown", command=shown)
