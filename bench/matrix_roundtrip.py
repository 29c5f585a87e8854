"""How long a member waits for the bot on Matrix, next to the fastest bot possible.

A member types `!whoami` in an encrypted direct chat with the real co-op bot
(`coopbot run` in a process of its own: matrix-nio transport, router, SQLite)
on a local Synapse; the time runs from the member sending to the answer
arriving at the member's client. In the same run, on the same server, the
same member does the same with a bare matrix-nio echo bot
(bench/matrix_echo.py), in a process of its own too, with the same client
settings, encryption and sync filter as coopbot's transport, so what is left
is the cost of coopbot itself. Rounds alternate between the two bots, the
first of each pair swapping every round, so that a drift of the machine hits
both alike. Printed: p50 and p99 of each, the ratio of the p50s and the
absolute p50 overhead. Target: coopbot's p50 at most 5 ms over the echo bot's.

Left out: federation and a distant homeserver (both bots sit next to the
same local Synapse, whose own work is most of each round trip), and the
member's own client's decryption, which is the same for both.

    python bench/matrix_roundtrip.py --rounds 100
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.matrix.members import MatrixCoop, NioMember
from tests.matrix.synapse_server import SynapseServer, synapse_available, unique

ROOT = Path(__file__).resolve().parents[1]
#: Most milliseconds coopbot's p50 may add to the echo bot's.
TARGET_MS = 5.0


class BotProcess:
    """A bot in a process of its own, stopped as an installer's service manager would stop it."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def coopbot_process(coop: MatrixCoop, directory: Path, log: Path) -> BotProcess:
    """`coopbot run` on the co-op's config, written as an installer would write it."""
    config = coop.config()
    matrix = config.matrix
    config_file = directory / "coopbot.toml"
    config_file.write_text(
        f'[database]\nurl = "{config.database.url}"\n'
        f'[matrix]\nenabled = true\nhomeserver = "{matrix.homeserver}"\nuser_id = "{matrix.user_id}"\n'
        f'password_env = "{matrix.password_env}"\naccess_token_env = "{matrix.access_token_env}"\n'
        f'store_path = "{matrix.store_path}"\nencryption = true\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return BotProcess([sys.executable, "-m", "coopbot", "--config", str(config_file), "run"], env, log)


def echo_process(server: SynapseServer, store: Path, log: Path) -> tuple[str, BotProcess]:
    account = server.register(unique("echo"))
    command = [sys.executable, str(ROOT / "bench" / "matrix_echo.py"), server.base_url, account.user_id,
               account.device_id, account.access_token, str(store)]  # fmt: skip
    return account.user_id, BotProcess(command, {**os.environ, "PYTHONPATH": str(ROOT)}, log)


def add_member(coop: MatrixCoop, name: str, matrix_id: str) -> None:
    from coopbot.app import CoopBot
    from coopbot.db import transaction
    from coopbot.services.members import accounts as members

    bot = CoopBot(coop.config())
    try:
        with transaction(bot.sessions) as session:
            member = members.create_member(session, name, "member", bot.clock.now())
            members.add_identity(session, member, "matrix", matrix_id, bot.clock.now(), name)
    finally:
        bot.dispose()


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
    log = directory / "bots.log"
    bots: list[BotProcess] = []
    member: NioMember | None = None
    try:
        account = server.register(unique("dana"))
        add_member(coop, "Dana", account.user_id)
        bots.append(coopbot_process(coop, directory, log))
        echo_id, echo = echo_process(server, directory / "echo-store", log)
        bots.append(echo)
        member = NioMember(server, account, directory / "member-store", "Dana")
        await member.start()
        rooms = {
            "coopbot": (await member.create_room([coop.user_id], direct=True, encrypted=True), coop.user_id),
            "echo bot": (await member.create_room([echo_id], direct=True, encrypted=True), echo_id),
        }
        for room, bot_id in rooms.values():
            try:
                await member.wait_joined(room, bot_id)
            except Exception:
                raise SystemExit(f"a bot did not join; their output:\n{log.read_text()}") from None

        samples: dict[str, list[float]] = {name: [] for name in rooms}
        order = list(rooms)
        for number in range(warmup + rounds):
            for name in order if number % 2 == 0 else order[::-1]:
                took = await round_trip(member, *rooms[name], "!whoami")
                if number >= warmup:
                    samples[name].append(took)

        print(f"Matrix round trip, member sends !whoami → answer at the member ({rounds} rounds, encrypted DM)")
        for name, values in samples.items():
            print(
                f"  {name:9}  p50 {percentile(values, 0.5) * 1000:7.1f} ms   "
                f"p99 {percentile(values, 0.99) * 1000:7.1f} ms   mean {statistics.fmean(values) * 1000:7.1f} ms"
            )
        ours, theirs = percentile(samples["coopbot"], 0.5), percentile(samples["echo bot"], 0.5)
        overhead = (ours - theirs) * 1000
        verdict = "met" if overhead <= TARGET_MS else "MISSED"
        print(f"  ratio of p50s: {ours / theirs:.2f}x; p50 overhead {overhead:+.1f} ms "
              f"(target at most {TARGET_MS:.0f} ms: {verdict})")  # fmt: skip
        return overhead
    finally:
        if member is not None:
            await member.stop()
        for bot in bots:
            bot.stop()
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
        overhead = asyncio.run(run(args.rounds, args.warmup, Path(tmp)))
    return 0 if overhead <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
