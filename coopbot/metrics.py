"""`GET /metrics` in Prometheus' text format (the `prometheus-client` library).

Why these series: they answer an operator's questions without a log dive. Is the
bot answering (updates by outcome, command latency)? Is the outbox keeping up
(depth, age of the oldest message, sends by result, retries, give-ups)? Are the
sweeps healthy (duration, failures)? Which process leads?

No label ever holds a member, a chat, a command's arguments or a message: only
platform names, outcomes and sweep names, so the series are safe to ship to a
monitoring service and their number stays small.

Counters live in this process; the outbox's depth and oldest age are read from
the database when Prometheus scrapes (`watch_outbox`), so every process of a
co-op reports the same queue, whichever one is asked. The web door serves
`metrics_routes()`; with `[web]` off, `[metrics] enabled` starts
`MetricsServer` on a port of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

#: coopbot's own registry, not the library's global one: a test's bot and the next
#: never see each other's collectors, and no process-wide default metrics are mixed in.
REGISTRY = CollectorRegistry(auto_describe=True)

UPDATES = Counter(
    "coopbot_updates_total", "Updates (messages, button presses) handled, by platform and outcome",
    ["platform", "outcome"], registry=REGISTRY,
)  # fmt: skip
COMMAND_SECONDS = Histogram(
    "coopbot_command_seconds", "Time from an update's arrival to its answer, by platform",
    ["platform"], registry=REGISTRY, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)  # fmt: skip
SENDS = Counter(
    "coopbot_outbox_sends_total", "Outbox sends by platform and result (sent, transient, unexpected, refused, "
    "unreachable)", ["platform", "result"], registry=REGISTRY,
)  # fmt: skip
RETRIES = Counter(
    "coopbot_outbox_retries_total", "Outbox messages put back in the queue to be tried again, by platform",
    ["platform"], registry=REGISTRY,
)  # fmt: skip
GIVE_UPS = Counter(
    "coopbot_outbox_give_ups_total", "Outbox messages set aside (failed) or dropped (dead), by platform and kind",
    ["platform", "kind"], registry=REGISTRY,
)  # fmt: skip
SWEEP_SECONDS = Histogram(
    "coopbot_sweep_seconds", "Duration of each sweep's run", ["sweep"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0),
)  # fmt: skip
SWEEP_FAILURES = Counter(
    "coopbot_sweep_failures_total", "Sweep runs that raised", ["sweep"], registry=REGISTRY
)
LEADER = Gauge("coopbot_leader", "1 while this process leads its co-op, else 0", registry=REGISTRY)


def observe_update(platform: str, outcome: str, seconds: float) -> None:
    """One update handled (the router calls it): `outcome` is a short word such as
    `answered`, `refused`, `failed`, `duplicate`; never the command's text."""
    UPDATES.labels(platform, outcome).inc()
    COMMAND_SECONDS.labels(platform).observe(seconds)


def observe_send(platform: str, result: str) -> None:
    SENDS.labels(platform, result).inc()


def observe_retry(platform: str) -> None:
    RETRIES.labels(platform).inc()


def observe_give_up(platform: str, kind: str) -> None:
    GIVE_UPS.labels(platform, kind).inc()


def observe_sweep(name: str, seconds: float, ok: bool) -> None:
    SWEEP_SECONDS.labels(name).observe(seconds)
    if not ok:
        SWEEP_FAILURES.labels(name).inc()


def set_leader(leading: bool) -> None:
    LEADER.set(1 if leading else 0)


class OutboxCollector(Collector):
    """Depth and oldest age of the outbox, read at each scrape (from a worker thread)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from coopbot.ops.state import outbox_state

        depth = GaugeMetricFamily("coopbot_outbox_depth", "Outbox messages waiting to be sent")
        oldest = GaugeMetricFamily("coopbot_outbox_oldest_seconds", "Age of the oldest message waiting, 0 if none")
        try:
            with self.sessions() as session:
                state = outbox_state(session)
        except Exception:
            log.exception("reading the outbox for /metrics failed")
            return
        depth.add_metric([], state.pending)
        age = (datetime.now(UTC) - state.oldest).total_seconds() if state.oldest is not None else 0.0
        oldest.add_metric([], max(0.0, age))
        yield depth
        yield oldest

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


_watched: OutboxCollector | None = None


def watch_outbox(sessions: sessionmaker[Session]) -> None:
    """Report this database's outbox from now on (the last bot started in a process wins)."""
    global _watched
    if _watched is not None:
        REGISTRY.unregister(_watched)
    _watched = OutboxCollector(sessions)
    REGISTRY.register(_watched)


def unwatch_outbox() -> None:
    global _watched
    if _watched is not None:
        REGISTRY.unregister(_watched)
        _watched = None


def exposition() -> bytes:
    return generate_latest(REGISTRY)


async def metrics_handler(request: web.Request) -> web.Response:
    """Rendered in a worker thread: the outbox's collector queries the database."""
    from aiohttp import web

    body = await asyncio.to_thread(exposition)
    response = web.Response(body=body)
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


def metrics_routes() -> list[web.RouteDef]:
    """The route the web door adds: `GET /metrics`."""
    from aiohttp import web

    return [web.get("/metrics", metrics_handler)]


def add_metrics_route(app: web.Application, bot: object) -> None:
    """The web door's `GET /metrics` (a route adder of `coopbot.runner.web_routes`)."""
    app.router.add_routes(metrics_routes())


class MetricsServer:
    """`/metrics` on a port of its own, for a bot whose web door is off."""

    def __init__(self, listen: str, port: int) -> None:
        self.listen = listen
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.listen}:{self.port}/metrics"

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.add_routes(metrics_routes())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.listen, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
