"""`GET /metrics` in Prometheus' text format (the `prometheus-client` library).

Why these series: they answer an operator's questions without a log dive. Is the
bot answering (updates by outcome, command latency)? Is the outbox keeping up
(depth, age of the oldest message, sends by result, retries, give-ups)? Are the
sweeps healthy (duration, failures)? Which process leads?

No label ever holds a member, a chat, a command's arguments or a message: only
platform names, outcomes and sweep names, so the series are safe to ship to a
monitoring service and their number stays small.

Counters live in this process, as plain numbers: the library (2 MiB of an idle
bot's memory) is loaded only when /metrics is first scraped, and writes the
text from them then. The outbox's depth and oldest age are read from the
database at each scrape (`watch_outbox`), so every process of a co-op reports
the same queue, whichever one is asked. The web door serves `metrics_routes()`;
with `[web]` off, `[metrics] enabled` starts `MetricsServer` on a port of its own.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from aiohttp import web
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

_lock = threading.Lock()  # handlers and sweeps count from worker threads


@dataclass
class Counted:
    """A counter family: how many times, by label values."""

    name: str
    doc: str
    labels: tuple[str, ...]
    values: dict[tuple[str, ...], float] = field(default_factory=dict)

    def inc(self, *labels: str) -> None:
        with _lock:
            self.values[labels] = self.values.get(labels, 0.0) + 1.0

    def family(self) -> Metric:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        with _lock:
            for labels, value in self.values.items():
                family.add_metric(labels, value)
        return family


@dataclass
class Timed:
    """A histogram family: how long, in buckets, by label values."""

    name: str
    doc: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...]
    #: Per label values: the count in each bucket (the last one +Inf), not cumulated; the sum.
    observed: dict[tuple[str, ...], tuple[list[int], list[float]]] = field(default_factory=dict)

    def observe(self, labels: tuple[str, ...], seconds: float) -> None:
        with _lock:
            counts, total = self.observed.setdefault(labels, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[bisect.bisect_left(self.buckets, seconds)] += 1
            total[0] += seconds

    def family(self) -> Metric:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        bounds = [*(repr(bound) for bound in self.buckets), "+Inf"]
        with _lock:
            for labels, (counts, total) in self.observed.items():
                cumulated = [float(sum(counts[: n + 1])) for n in range(len(counts))]
                family.add_metric(labels, list(zip(bounds, cumulated, strict=True)), total[0])
        return family


UPDATES = Counted("coopbot_updates_total", "Updates (messages, button presses) handled, by platform and outcome",
                  ("platform", "outcome"))
COMMAND_SECONDS = Timed("coopbot_command_seconds", "Time from an update's arrival to its answer, by platform",
                        ("platform",), (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
SENDS = Counted("coopbot_outbox_sends_total", "Outbox sends by platform and result (sent, transient, unexpected, "
                "refused, unreachable)", ("platform", "result"))
RETRIES = Counted("coopbot_outbox_retries_total",
                  "Outbox messages put back in the queue to be tried again, by platform", ("platform",))
GIVE_UPS = Counted("coopbot_outbox_give_ups_total",
                   "Outbox messages set aside (failed) or dropped (dead), by platform and kind", ("platform", "kind"))
SWEEP_SECONDS = Timed("coopbot_sweep_seconds", "Duration of each sweep's run", ("sweep",),
                      (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0))
SWEEP_FAILURES = Counted("coopbot_sweep_failures_total", "Sweep runs that raised", ("sweep",))
_leading = [0.0]


def observe_update(platform: str, outcome: str, seconds: float) -> None:
    """One update handled (the router calls it): `outcome` is a short word such as
    `answered`, `refused`, `failed`, `duplicate`; never the command's text."""
    UPDATES.inc(platform, outcome)
    COMMAND_SECONDS.observe((platform,), seconds)


def observe_send(platform: str, result: str) -> None:
    SENDS.inc(platform, result)


def observe_retry(platform: str) -> None:
    RETRIES.inc(platform)


def observe_give_up(platform: str, kind: str) -> None:
    GIVE_UPS.inc(platform, kind)


def observe_sweep(name: str, seconds: float, ok: bool) -> None:
    SWEEP_SECONDS.observe((name,), seconds)
    if not ok:
        SWEEP_FAILURES.inc(name)


def set_leader(leading: bool) -> None:
    _leading[0] = 1.0 if leading else 0.0


class OwnSeries:
    """Every series of this process, written at each scrape (a collector of the library's)."""

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        for series in (UPDATES, COMMAND_SECONDS, SENDS, RETRIES, GIVE_UPS, SWEEP_SECONDS, SWEEP_FAILURES):
            yield series.family()
        yield GaugeMetricFamily("coopbot_leader", "1 while this process leads its co-op, else 0", _leading[0])
        if _watched is not None:
            yield from _watched.collect()

    def describe(self) -> Iterator[Metric]:
        return iter(())


class OutboxCollector:
    """Depth and oldest age of the outbox, read at each scrape (from a worker thread)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

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



_watched: OutboxCollector | None = None
_registry: CollectorRegistry | None = None


def watch_outbox(sessions: sessionmaker[Session]) -> None:
    """Report this database's outbox from now on (the last bot started in a process wins)."""
    global _watched
    _watched = OutboxCollector(sessions)


def unwatch_outbox() -> None:
    global _watched
    _watched = None


def registry() -> CollectorRegistry:
    """coopbot's own registry, not the library's global one (no process-wide default metrics
    mixed in), made at the first scrape."""
    global _registry
    if _registry is None:
        from prometheus_client import CollectorRegistry

        _registry = CollectorRegistry(auto_describe=True)
        _registry.register(cast("Collector", OwnSeries()))
    return _registry


def __getattr__(name: str) -> Any:
    """`metrics.REGISTRY`, as before the library was loaded late: made when first asked for."""
    if name == "REGISTRY":
        return registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def exposition() -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(registry())


async def metrics_handler(request: web.Request) -> web.Response:
    """Rendered in a worker thread: the outbox's collector queries the database."""
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST

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
