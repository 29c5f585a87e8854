"""How long a member waits for the bot on Matrix, next to the fastest bot possible.

A member types `!whoami` in an encrypted direct chat with the real co-op bot
(matrix-nio transport, router, SQLite) on a local Synapse; the time runs from
the member sending to the answer arriving at the member's client. In the same
run, on the same server, the same member does the same with a bare
matrix-nio echo bot (same encryption, same sync settings), so what is left
is the cost of coopbot itself. Rounds alternate between the two bots so that
any drift of the machine hits both. Printed: p50 and p99 of each and the
ratio of the p50s. Target: ours at most 1.5x the echo bot's.

    /tmp/venv/bin/python bench/matrix_roundtrip.py --rounds 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.matrix.members import MatrixCoop, NioMember
from tests.matrix.synapse_server import SynapseServer, synapse_available, unique

TARGET = 1.5


class EchoBot:
    """The baseline: joins what it is invited to and says back what it reads, nothing more."""

    def __init__(self, server: SynapseServer, store: Path) -> None:
        from nio import AsyncClient, AsyncClientConfig

        self.account = server.register(unique("echo"))
        store.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(
            server.base_url,
            self.account.user_id,
            device_id=self.account.device_id,
            store_path=str(store),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def user_id(self) -> str:
        return self.account.user_id

    async def start(self) -> None:
        from nio import InviteMemberEvent, RoomMessageText

        self.client.restore_login(self.account.user_id, self.account.device_id, self.account.access_token)
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        self.client.add_event_callback(self._on_text, RoomMessageText)
        self.client.add_event_callback(self._on_invite, InviteMemberEvent)
        await self.client.sync(timeout=0, full_state=True)
        self._task = asyncio.create_task(self.client.sync_forever(timeout=30000))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()

    async def _on_invite(self, room: Any, event: Any) -> None:
        if event.state_key == self.user_id and event.membership == "invite":
            await self.client.join(room.room_id)

    async def _on_text(self, room: Any, event: Any) -> None:
        if event.sender != self.user_id:
            content = {"msgtype": "m.text", "body": f"echo: {event.body}"}
            await self.client.room_send(room.room_id, "m.room.message", content, ignore_unverified_devices=True)


async def round_trip(member: NioMember, room: str, bot_id: str, text: str) -> float:
    mark = member.mark()
    started = time.perf_counter()
    await member.say(room, text)
    answer = await member.next_message(after=mark, sender=bot_id, room_id=room)
    return answer.at - started


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def run(rounds: int, warmup: int, directory: Path) -> float:
    server = SynapseServer(directory / "synapse")
    server.start()
    coop = MatrixCoop(server, directory / "coop")
    echo = EchoBot(server, directory / "echo-store")
    member: NioMember | None = None
    try:
        await coop.start()
        await echo.start()
        account = server.register(unique("dana"))
        member = NioMember(server, account, directory / "member-store", "Dana")
        await member.start()
        coop.add_member("Dana", "member", member.user_id)
        ours = await member.create_room([coop.user_id], direct=True, encrypted=True)
        theirs = await member.create_room([echo.user_id], direct=True, encrypted=True)
        await member.wait_joined(ours, coop.user_id)
        await member.wait_joined(theirs, echo.user_id)

        samples: dict[str, list[float]] = {"coopbot": [], "echo bot": []}
        for number in range(warmup + rounds):
            coop_time = await round_trip(member, ours, coop.user_id, "!whoami")
            echo_time = await round_trip(member, theirs, echo.user_id, "!whoami")
            if number >= warmup:
                samples["coopbot"].append(coop_time)
                samples["echo bot"].append(echo_time)

        print(f"Matrix round trip, member sends !whoami → answer at the member ({rounds} rounds, encrypted DM)")
        for name, values in samples.items():
            print(
                f"  {name:9}  p50 {percentile(values, 0.5) * 1000:7.1f} ms   "
                f"p99 {percentile(values, 0.99) * 1000:7.1f} ms   mean {statistics.fmean(values) * 1000:7.1f} ms"
            )
        ratio = percentile(samples["coopbot"], 0.5) / percentile(samples["echo bot"], 0.5)
        verdict = "ok" if ratio <= TARGET else "over target"
        print(f"  ratio of p50s: {ratio:.2f}x (target at most {TARGET}x: {verdict})")
        return ratio
    finally:
        if member is not None:
            await member.stop()
        await echo.stop()
        await coop.stop()
        coop.close()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("nio").setLevel(logging.ERROR)
    reason = synapse_available()
    if reason is not None:
        print(f"cannot run: {reason}")
        return 2
    with tempfile.TemporaryDirectory(prefix="coopbot-matrix-bench-") as tmp:
        ratio = asyncio.run(run(args.rounds, args.warmup, Path(tmp)))
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
