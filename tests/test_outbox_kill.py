"""kill -9 in the middle of telling 2,000 members their share: after every restart
nothing is lost, and what a kill can send twice stays within the bound the
outbox is built to (`MAX_IN_FLIGHT` per platform), not "one, usually"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from coopbot.app import CoopBot
from coopbot.chat import Address, Outgoing
from coopbot.db import transaction
from coopbot.models import OutboxMessage
from coopbot.outbox import MAX_IN_FLIGHT, outbox_row, store_new
from tests.conftest import make_config
from tests.outbox_sender import PLATFORM

MEMBERS = 2000
KILLS = 3
#: How many messages each doomed run delivers before it is killed: in full flow.
BEFORE_THE_KILL = 300
#: How long the platform takes to answer after taking a message (Telegram: 50-300 ms). The
#: longer, the more messages a kill finds taken but not yet answered; 20 ms is enough for
#: every slot to hold one, so the bound itself is what the kills meet.
ANSWER_AFTER = 0.02
ROOT = Path(__file__).resolve().parent.parent


class Receiver(ThreadingHTTPServer):
    """The platform's side: every message that reached it, as (run that sent it, key)."""

    daemon_threads = True
    request_queue_size = 128  # every sender's connections at once, none refused

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Taking)
        self.received: list[tuple[int, str]] = []
        self.per_run: Counter[int] = Counter()
        self.changed = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: object, client_address: object) -> None:
        """A killed sender resets its connections: expected, not worth a traceback."""

    def take(self, run: int, key: str) -> int:
        with self.changed:
            self.received.append((run, key))
            self.per_run[run] += 1
            self.changed.notify_all()
            return len(self.received)

    def wait_for_run(self, run: int, count: int, timeout: float = 60.0) -> None:
        """Until the process tagged `run` has delivered `count` messages."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.per_run[run] >= count, timeout=timeout):
                pytest.fail(f"gave up waiting for run {run} to deliver {count} messages")


class Taking(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real platform's API
    disable_nagle_algorithm = True  # or each answer waits 40 ms for a delayed ACK
    server: Receiver

    def do_POST(self) -> None:
        run, key = self.rfile.read(int(self.headers["Content-Length"])).decode().split(" ", 1)
        answer = str(self.server.take(int(run), key)).encode()
        time.sleep(ANSWER_AFTER)  # the platform's round trip: the message is taken, its "ok" is on its way
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def queue_shares(url: str) -> set[str]:
    """Each member's share, queued as the period close does: one row each, one transaction."""
    bot = CoopBot(make_config(url))
    now = datetime.now(UTC)
    keys = {f"period:2026-11:share:m{n}:{PLATFORM}" for n in range(MEMBERS)}
    rows = [outbox_row(key, Address(PLATFORM, f"chat-{n}", True), Outgoing(f"Your share: {n}.00 EUR"), now,
                       None, None, None) for n, key in enumerate(sorted(keys))]
    with transaction(bot.sessions) as session:
        assert store_new(session, rows) == MEMBERS
    bot.dispose()
    return keys


def sender(url: str, receiver: Receiver, run: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.outbox_sender", url, receiver.url, str(run)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def duplicates_by_run(received: list[tuple[int, str]]) -> Counter[int]:
    """Each repeat of a key, counted against the run that had sent it before: that run
    died between the platform's "ok" and its commit (or, without a kill, sent it twice)."""
    last_sender: dict[str, int] = {}
    repeats: Counter[int] = Counter()
    for run, key in received:
        if key in last_sender:
            repeats[last_sender[key]] += 1
        last_sender[key] = run
    return repeats


def statuses(url: str) -> Counter[str]:
    bot = CoopBot(make_config(url))
    with bot.sessions() as session:
        rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
        found = Counter(dict(rows.all()))
    bot.dispose()
    return found


def test_kill_9_during_a_large_delivery_loses_nothing_and_repeats_at_most_the_bound(
    db_url: str, receiver: Receiver
) -> None:
    keys = queue_shares(db_url)
    for run in range(KILLS):
        child = sender(db_url, receiver, run)
        try:
            receiver.wait_for_run(run, BEFORE_THE_KILL)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        assert child.returncode == -signal.SIGKILL
    last = sender(db_url, receiver, KILLS)
    assert last.wait(timeout=120) == 0

    received = list(receiver.received)
    repeats = duplicates_by_run(received)
    print(f"\nduplicates per kill ({db_url.partition(':')[0]}): {[repeats[run] for run in range(KILLS)]}")
    assert {key for _, key in received} == keys, "every member got their share"
    assert all(repeats[run] <= MAX_IN_FLIGHT for run in range(KILLS)), f"per kill: {repeats}"
    assert repeats[KILLS] == 0, "no duplicate without a kill"
    assert statuses(db_url) == Counter({"sent": MEMBERS})
