"""`/metrics` answers with the documented series, on its own port when the web door is off;
JSON logs are one object a line and never carry what people said or voted."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from coopbot import metrics
from coopbot.chat import Address, Outgoing
from coopbot.db import make_engine, make_sessionmaker, transaction, upgrade
from coopbot.ops.logs import JsonFormatter, setup_logging
from coopbot.outbox import outbox_row, store_new
from tests.conftest import Coop

#: The series the README documents, each as it appears in the exposition.
DOCUMENTED = (
    "coopbot_updates_total", "coopbot_command_seconds_bucket", "coopbot_outbox_depth",
    "coopbot_outbox_oldest_seconds", "coopbot_outbox_sends_total", "coopbot_outbox_retries_total",
    "coopbot_outbox_give_ups_total", "coopbot_sweep_seconds_bucket", "coopbot_sweep_failures_total",
    "coopbot_leader",
)  # fmt: skip


def sample(body: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus' text format (labels in any order)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(body):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


async def test_metrics_on_their_own_port_say_how_the_bot_is_doing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'coop.sqlite3'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    queued = datetime.now(UTC) - timedelta(minutes=5)
    with transaction(sessions) as session:
        store_new(session, [outbox_row(f"k{n}", Address("console", "1", True), Outgoing("secret words"), queued,
                                       None, None, None) for n in range(4)])
    metrics.watch_outbox(sessions)
    metrics.observe_update("telegram", "answered", 0.03)
    metrics.observe_send("telegram", "sent")
    metrics.observe_retry("telegram")
    metrics.observe_give_up("telegram", "transient")
    metrics.observe_sweep("polls", 0.002, ok=False)
    metrics.set_leader(True)
    server = metrics.MetricsServer("127.0.0.1", 0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(server.url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            body = await response.text()
    finally:
        await server.stop()
        metrics.unwatch_outbox()
        engine.dispose()
    for name in DOCUMENTED:
        assert name in body, name
    assert sample(body, "coopbot_outbox_depth") == 4
    oldest = sample(body, "coopbot_outbox_oldest_seconds")
    assert oldest is not None and 290 < oldest < 400
    assert sample(body, "coopbot_leader") == 1
    assert (sample(body, "coopbot_updates_total", platform="telegram", outcome="answered") or 0) >= 1
    assert (sample(body, "coopbot_sweep_failures_total", sweep="polls") or 0) >= 1
    assert "secret words" not in body


def test_metrics_routes_are_one_get(tmp_path: Path) -> None:
    routes = metrics.metrics_routes()
    assert [(route.method, route.path) for route in routes] == [("GET", "/metrics")]


def test_json_logs_are_one_object_a_line_without_what_people_said() -> None:
    stream = io.StringIO()
    setup_logging("json", "info", stream=stream)
    try:
        log = logging.getLogger("coopbot.test")
        log.info("outbox row %s sent", 12, extra={"platform": "telegram", "text": "my IBAN is...", "vote": "agree"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("sweep %s failed", "polls")
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "outbox row 12 sent" and first["level"] == "info" and first["logger"] == "coopbot.test"
    assert first["platform"] == "telegram"
    assert "text" not in first and "vote" not in first and "IBAN" not in lines[0] and "agree" not in lines[0]
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]
    assert datetime.fromisoformat(first["time"]).tzinfo is not None


def test_the_text_format_stays_plain() -> None:
    stream = io.StringIO()
    setup_logging("text", "warning", stream=stream)
    try:
        logging.getLogger("coopbot.test").warning("careful")
        logging.getLogger("coopbot.test").info("not shown")
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)
    assert stream.getvalue() == "WARNING coopbot.test: careful\n"
    assert isinstance(JsonFormatter().format(logging.makeLogRecord({"msg": "x"})), str)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logging_is_configured_from_the_config(fmt: str) -> None:
    from coopbot.config import Config

    config = Config.model_validate({"logging": {"format": fmt}})
    assert config.logging.format == fmt


async def test_run_serves_metrics_on_their_own_port_when_the_web_door_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coopbot import runner
    from tests.conftest import make_config
    from tests.web.test_run import Output, console_only

    monkeypatch.setattr(runner, "add_configured_transports", console_only)
    config = make_config(f"sqlite:///{tmp_path / 'coop.sqlite3'}", metrics={"enabled": True, "port": 0})
    out = Output()
    task = asyncio.create_task(runner.run_forever(config, out))
    await asyncio.wait_for(out.running.wait(), timeout=60)
    found = re.search(r"Metrics are served on (http://\S+)", out.getvalue())
    assert found is not None, out.getvalue()
    try:
        async with aiohttp.ClientSession() as http, http.get(found.group(1)) as response:
            assert response.status == 200
            body = await response.text()
    finally:
        signal.raise_signal(signal.SIGTERM)
        assert await asyncio.wait_for(task, timeout=60) == 0
    assert sample(body, "coopbot_leader") == 1
    assert sample(body, "coopbot_outbox_depth") == 0
    assert (sample(body, "coopbot_sweep_seconds_count", sweep="polls.close") or 0) >= 1
    metrics.unwatch_outbox()


async def test_the_web_door_serves_metrics_counting_each_update_the_router_handles(coop: Coop) -> None:
    from coopbot.runner import web_routes
    from coopbot.web.server import WebServer

    def answered() -> float:
        return metrics.REGISTRY.get_sample_value(
            "coopbot_updates_total", {"platform": "console", "outcome": "answered"}) or 0.0  # fmt: skip

    before = answered()
    await coop.say("zoe", "/help")
    await coop.say("zoe", "/help")
    assert answered() == before + 2
    server = WebServer(coop.bot, web_routes(), listen="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}metrics") as response:
            body = await response.text()
    finally:
        await server.stop()
    assert sample(body, "coopbot_updates_total", platform="console", outcome="answered") == before + 2
