"""The people on the test homeserver: co-op members' clients and the co-op's bot.

A member is a plain matrix-nio client with end-to-end encryption on, doing
what Element does (creating direct chats, inviting, typing, reacting), so
the bot is tested against what a member's client really sends, not against
our own idea of it. The bot is set up as an installer would: its own
account, its password in an environment variable, its key store on disk,
and `coopbot run`'s way of starting the configured transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.matrix.synapse_server import Account, SynapseServer, unique

if TYPE_CHECKING:
    from coopbot.clock import Clock

ENCRYPTION = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
WAIT = 30.0


@dataclass(frozen=True)
class Reaction:
    room_id: str
    sender: str
    reacts_to: str
    key: str


@dataclass
class Seen:
    room_id: str
    sender: str
    body: str
    event_id: str
    encrypted: bool
    relates_to: dict[str, Any]
    #: When this client saw it (time.perf_counter), for the round-trip benchmark.
    at: float = 0.0


class NioMember:
    """A co-op member's Matrix client, driven by the test.

    It syncs in the background, joins what it is invited to, and records
    every message it sees so the test can wait for the bot's answer.
    """

    def __init__(self, server: SynapseServer, account: Account, store: Path, name: str) -> None:
        from nio import AsyncClient, AsyncClientConfig

        store.mkdir(parents=True, exist_ok=True)
        self.server = server
        self.account = account
        self.name = name
        self.client = AsyncClient(
            server.base_url,
            account.user_id,
            device_id=account.device_id,
            store_path=str(store),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
        )
        self.seen: list[Seen] = []
        self.undecryptable: list[str] = []
        self.reactions: list[Reaction] = []
        self.files: list[Any] = []
        #: Events of other types (native polls): (room, type, event id, content).
        self.others: list[tuple[str, str, str, dict[str, Any]]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def user_id(self) -> str:
        return self.account.user_id

    async def start(self) -> None:
        from nio import (
            InviteMemberEvent,
            MegolmEvent,
            ReactionEvent,
            RoomEncryptedMedia,
            RoomMessageMedia,
            RoomMessageText,
            UnknownEvent,
        )

        self.client.restore_login(self.account.user_id, self.account.device_id, self.account.access_token)
        await self.client.set_displayname(self.name)
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        self.client.add_event_callback(self._on_text, RoomMessageText)
        self.client.add_event_callback(self._on_undecryptable, MegolmEvent)
        self.client.add_event_callback(self._on_invite, InviteMemberEvent)
        self.client.add_event_callback(self._on_reaction, ReactionEvent)
        self.client.add_event_callback(self._on_file, (RoomEncryptedMedia, RoomMessageMedia))
        self.client.add_event_callback(self._on_other, UnknownEvent)
        await self.client.sync(timeout=0, full_state=True)
        self._task = asyncio.create_task(self.client.sync_forever(timeout=30000))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()

    async def _on_text(self, room: Any, event: Any) -> None:
        relates = event.source.get("content", {}).get("m.relates_to", {}) or {}
        at = time.perf_counter()
        self.seen.append(Seen(room.room_id, event.sender, event.body, event.event_id, event.decrypted, relates, at))
        self._changed.set()

    async def _on_undecryptable(self, room: Any, event: Any) -> None:
        self.undecryptable.append(event.event_id)
        self._changed.set()

    async def _on_reaction(self, room: Any, event: Any) -> None:
        self.reactions.append(Reaction(room.room_id, event.sender, event.reacts_to, event.key))
        self._changed.set()

    async def _on_file(self, room: Any, event: Any) -> None:
        self.files.append(event)
        self._changed.set()

    async def _on_other(self, room: Any, event: Any) -> None:
        self.others.append((room.room_id, event.type, event.event_id, event.source.get("content", {})))
        self._changed.set()

    async def send_event(self, room_id: str, kind: str, content: dict[str, Any]) -> str:
        """Any event, as a client with features of its own (Element's polls) sends it."""
        from nio import RoomSendResponse

        answer = await self.client.room_send(room_id, kind, content, ignore_unverified_devices=True)
        assert isinstance(answer, RoomSendResponse), answer
        return str(answer.event_id)

    async def _on_invite(self, room: Any, event: Any) -> None:
        if event.state_key == self.user_id and event.membership == "invite":
            await self.client.join(room.room_id)

    # --- acting ----------------------------------------------------------------

    async def say(self, room_id: str, text: str) -> str:
        from nio import RoomSendResponse

        await self.wait_for(lambda: room_id in self.client.rooms, f"{self.name} to know room {room_id}")
        response = await self.client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": text},
            ignore_unverified_devices=True,
        )
        assert isinstance(response, RoomSendResponse), response
        return str(response.event_id)

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        from nio import RoomSendResponse

        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        response = await self.client.room_send(room_id, "m.reaction", content, ignore_unverified_devices=True)
        assert isinstance(response, RoomSendResponse), response
        return str(response.event_id)

    async def create_room(self, invite: list[str], *, direct: bool, encrypted: bool, name: str = "") -> str:
        from nio import RoomCreateResponse, RoomPreset

        response = await self.client.room_create(
            name=name or None,
            is_direct=direct,
            invite=invite,
            preset=RoomPreset.trusted_private_chat if direct else RoomPreset.private_chat,
            initial_state=[ENCRYPTION] if encrypted else [],
        )
        assert isinstance(response, RoomCreateResponse), response
        room_id = str(response.room_id)
        await self.wait_for(lambda: room_id in self.client.rooms, f"{self.name} to sync room {room_id}")
        return room_id

    async def invite(self, room_id: str, user_id: str) -> None:
        from nio import RoomInviteResponse

        response = await self.client.room_invite(room_id, user_id)
        assert isinstance(response, RoomInviteResponse), response

    # --- waiting ------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.seen)

    async def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.2))

    async def wait_joined(self, room_id: str, user_id: str) -> None:
        def joined() -> bool:
            room = self.client.rooms.get(room_id)
            return room is not None and user_id in room.users and not room.users[user_id].invited

        await self.wait_for(joined, f"{user_id} to join {room_id}")

    async def next_message(
        self,
        *,
        after: int,
        sender: str | None = None,
        room_id: str | None = None,
        contains: str = "",
        timeout: float = WAIT,
    ) -> Seen:
        found: list[Seen] = []

        def match() -> bool:
            for seen in self.seen[after:]:
                if (
                    (sender is None or seen.sender == sender)
                    and (room_id is None or seen.room_id == room_id)
                    and contains in seen.body
                ):
                    found.append(seen)
                    return True
            return False

        await self.wait_for(match, f"a message from {sender} containing {contains!r}", timeout)
        return found[0]

    def messages(self, *, after: int = 0, sender: str | None = None, room_id: str | None = None) -> list[Seen]:
        return [
            s
            for s in self.seen[after:]
            if (sender is None or s.sender == sender) and (room_id is None or s.room_id == room_id)
        ]


class MatrixCoop:
    """A real CoopBot on SQLite whose Matrix transport logs in to the test server.

    The bot has its own account, password in an environment variable and
    key store in `directory`, as an installer would set it up; `restart()`
    stops the whole bot and starts a new one on the same database and store.
    """

    def __init__(
        self, server: SynapseServer, directory: Path, *, rooms: tuple[str, ...] = (), encryption: bool = True
    ) -> None:
        self.server = server
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.account = server.register(unique("coopbot"))
        self.password_env = f"COOPBOT_TEST_MATRIX_PASSWORD_{secrets.token_hex(4).upper()}"
        os.environ[self.password_env] = self.account.password
        self.rooms = list(rooms)
        self.encryption = encryption
        self.bot: Any = None
        self.lone_transport: Any = None
        #: More config sections, e.g. {"telegram": {...}} to run both platforms at once.
        self.extra: dict[str, Any] = {}
        #: The bot's clock when the test moves time (rosters); the system clock otherwise.
        self.clock: Clock | None = None

    @property
    def user_id(self) -> str:
        return self.account.user_id

    def config(self) -> Any:
        from coopbot.config import Config

        return Config.model_validate(
            {
                **self.extra,
                "database": {"url": f"sqlite:///{self.directory / 'coop.sqlite3'}"},
                "matrix": {
                    "enabled": True,
                    "homeserver": self.server.base_url,
                    "user_id": self.account.user_id,
                    "password_env": self.password_env,
                    "access_token_env": f"{self.password_env}_TOKEN",
                    "store_path": str(self.directory / "matrix-store"),
                    "rooms": self.rooms,
                    "encryption": self.encryption,
                },
            }
        )

    async def start(self) -> Any:
        """Start the bot as `coopbot run` does, with every configured transport."""
        from coopbot.app import CoopBot
        from coopbot.runner import add_configured_transports

        self.bot = await asyncio.to_thread(CoopBot, self.config(), clock=self.clock)
        add_configured_transports(self.bot)
        await self.bot.start()
        return self.bot

    async def start_transport(self, on_incoming: Callable[[Any], Awaitable[None]]) -> Any:
        """Only the Matrix transport, on the co-op's database, handing events to `on_incoming`."""
        from coopbot.app import CoopBot
        from coopbot.transports.matrix.transport import build_matrix_transport

        config = self.config()
        if self.bot is None:
            self.bot = await asyncio.to_thread(CoopBot, config, clock=self.clock)
        self.lone_transport = build_matrix_transport(config, self.bot)
        await self.lone_transport.start(on_incoming)
        return self.lone_transport

    async def stop(self) -> None:
        if self.lone_transport is not None:
            await self.lone_transport.stop()
            self.lone_transport = None
        elif self.bot is not None:
            await self.bot.stop()
        if self.bot is not None:
            self.bot.dispose()
            self.bot = None

    async def restart(self) -> Any:
        await self.stop()
        return await self.start()

    @property
    def transport(self) -> Any:
        return self.bot.transports["matrix"]

    def add_member(self, name: str, role: str, matrix_id: str) -> int:
        from coopbot.db import transaction
        from coopbot.services.members import accounts as members

        with transaction(self.bot.sessions) as session:
            member = members.create_member(session, name, role, self.bot.clock.now())
            members.add_identity(session, member, "matrix", matrix_id, self.bot.clock.now(), name)
            return int(member.id)

    def invite_code(self, role: str = "member") -> str:
        from coopbot.db import transaction
        from coopbot.services.members import accounts as members

        with transaction(self.bot.sessions) as session:
            return members.create_invite(session, None, role, self.bot.clock.now())

    def use_access_token(self) -> None:
        """Log in with the account's access token instead of the password, as some installers prefer."""
        os.environ.pop(self.password_env, None)
        os.environ[f"{self.password_env}_TOKEN"] = self.account.access_token

    def close(self) -> None:
        os.environ.pop(self.password_env, None)
        os.environ.pop(f"{self.password_env}_TOKEN", None)
