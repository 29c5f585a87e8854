"""What the Matrix transport must still know after a restart, kept in the co-op database.

A member sees the bot as one continuous presence, so nothing it promised may
be forgotten when the process stops: how far it has read (or a restart would
answer old messages again), which reaction on which of its messages means
which command (or a reaction on yesterday's offer would do nothing), which
direct chat belongs to whom, and who walked out of theirs (so the bot does
not open a new one behind their back). Everything lives in the co-op's own
database rather than next to nio's key store, so the co-op's backups and a
member's erasure cover it too.

`transport_state` keys are at most 50 characters, and event and user ids can
be longer, so keys are hashed; the full id stays in the value, which is also
where the privacy erasure looks for a member's ids. Every method blocks and
opens its own short session: the transport calls them through
`asyncio.to_thread`, so no session is ever held across an await.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from coopbot.clock import Clock
from coopbot.db import transaction
from coopbot.models import Identity, TransportState
from coopbot.services.members.accounts import identity_of, member_of
from coopbot.storage import record_receipt
from coopbot.transports.matrix import PLATFORM

MATRIX = PLATFORM.name
BUTTON_TTL = timedelta(days=30)


class MatrixState:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, default_language: str) -> None:
        self.sessions = sessions
        self.clock = clock
        self.default_language = default_language

    # --- how far the bot has read -----------------------------------------------------

    def since(self) -> str | None:
        return self._get("since")

    def save_since(self, token: str) -> None:
        self._set("since", token)

    def first_time(self, event_id: str) -> bool:
        """Claim an event for a one-off answer; False when it was claimed before, maybe before a
        restart. The router's own receipt, so an event is answered once whoever answers it."""
        with transaction(self.sessions) as session:
            return record_receipt(session, MATRIX, event_id, self.clock.now())

    def save_buttons(self, event_id: str, room_id: str, mapping: dict[str, str]) -> None:
        value = {"event": event_id, "room": room_id, "at": self.clock.now().isoformat(), "buttons": mapping}
        self._set(_button_key(event_id), json.dumps(value, ensure_ascii=False))

    def load_buttons(self, event_id: str) -> dict[str, str] | None:
        raw = self._get(_button_key(event_id))
        if raw is None:
            return None
        stored = json.loads(raw)
        return dict(stored["buttons"]) if stored.get("event") == event_id else None

    def prune_buttons(self) -> None:
        """Reactions on month-old offers and ballots no longer matter; forget them."""
        cutoff = self.clock.now() - BUTTON_TTL
        with transaction(self.sessions) as session:
            rows = session.scalars(
                select(TransportState).where(TransportState.platform == MATRIX, TransportState.key.like("btn:%"))
            ).all()
            old = [row.key for row in rows if datetime.fromisoformat(json.loads(row.value)["at"]) < cutoff]
            if old:
                session.execute(
                    delete(TransportState).where(TransportState.platform == MATRIX, TransportState.key.in_(old))
                )

    # --- direct chats -----------------------------------------------------------------

    def known_dms(self) -> dict[str, str]:
        with self.sessions() as session:
            rows = session.execute(
                select(Identity.external_id, Identity.private_chat_id).where(
                    Identity.platform == MATRIX, Identity.private_chat_id.is_not(None)
                )
            ).all()
            return {user: room for user, room in rows if room}

    def load_dm(self, user_id: str) -> str | None:
        with self.sessions() as session:
            identity = identity_of(session, MATRIX, user_id)
            return identity.private_chat_id if identity is not None else None

    def save_dm(self, user_id: str, room_id: str | None) -> None:
        with transaction(self.sessions) as session:
            identity = identity_of(session, MATRIX, user_id)
            if identity is not None:
                identity.private_chat_id = room_id

    def set_left(self, user_id: str, left: bool) -> None:
        """Remember, across restarts, who left their direct chat with the bot."""
        if left:
            self._set(_left_key(user_id), user_id)
            return
        with transaction(self.sessions) as session:
            session.execute(
                delete(TransportState).where(
                    TransportState.platform == MATRIX, TransportState.key == _left_key(user_id)
                )
            )

    def left_users(self) -> set[str]:
        with self.sessions() as session:
            rows = session.scalars(
                select(TransportState.value).where(
                    TransportState.platform == MATRIX, TransportState.key.like("left:%")
                )
            )
            return set(rows)

    # --- who is talking ---------------------------------------------------------------

    def is_member(self, user_id: str) -> bool:
        with self.sessions() as session:
            return member_of(session, MATRIX, user_id) is not None

    def language_of(self, user_id: str) -> str:
        with self.sessions() as session:
            member = member_of(session, MATRIX, user_id)
            if member is not None and member.language:
                return member.language
        return self.default_language

    # --- native polls (`transports.matrix.polls`) -----------------------------------------

    def save_poll(self, event_id: str, room_id: str, code: str) -> None:
        """Which poll a start event is, and the start event of a poll in a room (for its end)."""
        self._set(_poll_key(event_id), json.dumps({"event": event_id, "code": code}))
        self._set(_poll_key(f"{room_id}|{code}"), json.dumps({"event": event_id, "code": code}))

    def poll_of(self, event_id: str) -> str | None:
        raw = self._get(_poll_key(event_id))
        stored = json.loads(raw) if raw is not None else {}
        return str(stored["code"]) if stored.get("event") == event_id else None

    def poll_start(self, room_id: str, code: str) -> str | None:
        raw = self._get(_poll_key(f"{room_id}|{code}"))
        stored = json.loads(raw) if raw is not None else {}
        return str(stored["event"]) if stored.get("code") == code else None

    # --- the key-value table ------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        with self.sessions() as session:
            row = session.get(TransportState, (MATRIX, key))
            return row.value if row is not None else None

    def _set(self, key: str, value: str) -> None:
        with transaction(self.sessions) as session:
            row = session.get(TransportState, (MATRIX, key))
            if row is None:
                session.add(TransportState(platform=MATRIX, key=key, value=value))
            else:
                row.value = value


def _button_key(event_id: str) -> str:
    return "btn:" + hashlib.sha256(event_id.encode()).hexdigest()[:40]


def _left_key(user_id: str) -> str:
    return "left:" + hashlib.sha256(user_id.encode()).hexdigest()[:40]


def _poll_key(what: str) -> str:
    return "poll:" + hashlib.sha256(what.encode()).hexdigest()[:40]
