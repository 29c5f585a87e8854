"""The baseline of bench/matrix_roundtrip.py: a bare matrix-nio bot that says back what it reads.

Run in a process of its own, as coopbot is, with the same client settings and
the same sync filter as coopbot's Matrix transport, so that the difference the
benchmark measures is coopbot's own work, not a lighter sync.

    python bench/matrix_echo.py HOMESERVER USER_ID DEVICE_ID ACCESS_TOKEN STORE
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nio import AsyncClient, AsyncClientConfig, InviteMemberEvent, RoomMessageText

from coopbot.transports.matrix.transport import SYNC_FILTER


async def echo(homeserver: str, user_id: str, device_id: str, token: str, store: str) -> None:
    Path(store).mkdir(parents=True, exist_ok=True)
    config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True, max_limit_exceeded=0,
                               max_timeouts=2, request_timeout=30)  # fmt: skip
    client = AsyncClient(homeserver, user_id, device_id=device_id, store_path=store, config=config)
    client.restore_login(user_id, device_id, token)
    if client.should_upload_keys:
        await client.keys_upload()

    async def on_invite(room: Any, event: Any) -> None:
        if event.state_key == user_id and event.membership == "invite":
            await client.join(room.room_id)

    async def on_text(room: Any, event: Any) -> None:
        if event.sender != user_id:
            content = {"msgtype": "m.text", "body": f"echo: {event.body}"}
            await client.room_send(room.room_id, "m.room.message", content, ignore_unverified_devices=True)

    client.add_event_callback(on_text, RoomMessageText)  # type: ignore[arg-type]
    client.add_event_callback(on_invite, InviteMemberEvent)  # type: ignore[arg-type]
    await client.sync(timeout=0, full_state=True, sync_filter=SYNC_FILTER)
    try:
        await client.sync_forever(timeout=30000, sync_filter=SYNC_FILTER)
    finally:
        await client.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(echo(*sys.argv[1:6]))
