"""End to end through real Kafka: a regressing canary pages PagerDuty once (one incident; any
repeat carries the same dedup key, also across a restart) and raises one Alertmanager alert."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from detector.demo import REGRESSING, DemoPlan, demo_lines
from detector.localbroker import LocalBroker
from rollback.sinks.fake_pagerduty import FakePagerDuty
from tests.integration.harness import (
    ServiceProcess,
    consumer_lag,
    keyed,
    produce,
    service_with_topics,
)

pytestmark = pytest.mark.integration

ROUTING_KEY = "E2EKEYb7e1c9d04f2a4e8c9d3f6a1b5x"
PLAN = DemoPlan(history_minutes=15, canary_minutes=8, regress_at_minute=3)


def _am_alerts(url: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
    return [a for a in alerts if a["labels"].get("service") == REGRESSING]


def test_a_regression_pages_once_and_raises_one_alertmanager_alert(
    kafka_broker: LocalBroker,
    tmp_path: Path,
    pagerduty: FakePagerDuty,
    alertmanager: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENTINEL_E2E_ROUTING_KEY", ROUTING_KEY)
    cfg, path = service_with_topics(kafka_broker.bootstrap, tmp_path)
    data = yaml.safe_load(path.read_text())
    data["alerting"]["sinks"] = [
        {
            "type": "pagerduty",
            "base_url": pagerduty.url,
            "routing_key": {"env": "SENTINEL_E2E_ROUTING_KEY"},
        },
        {"type": "alertmanager", "url": alertmanager},
        {"type": "log"},
    ]
    path.write_text(yaml.safe_dump(data))
    lines = list(demo_lines(PLAN))
    half = len(lines) * 3 // 4
    svc = ServiceProcess(cfg, path, tmp_path / "service")
    svc.start()
    try:
        asyncio.run(produce(kafka_broker.bootstrap, cfg.kafka.metrics_topic, keyed(lines[:half])))
        svc.wait_for("the page", lambda: bool(pagerduty.incidents))
        svc.wait_for("the Alertmanager alert", lambda: bool(_am_alerts(alertmanager)))
        # a restart replays the uncommitted tail and re-reads the outbox: no second incident
        svc.stop()
        svc.start()
        asyncio.run(produce(kafka_broker.bootstrap, cfg.kafka.metrics_topic, keyed(lines[half:])))
        svc.wait_for(
            "every record to be processed",
            lambda: (
                consumer_lag(kafka_broker.bootstrap, cfg.kafka.app_id, cfg.kafka.metrics_topic) == 0
            ),
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(pagerduty.requests) < 2:
            time.sleep(0.1)  # let any repeat arrive before counting (bounded poll)
    finally:
        svc.stop()

    assert all(not r.errors for r in pagerduty.requests), [r.errors for r in pagerduty.requests]
    (incident,) = pagerduty.incidents
    assert incident.open and incident.severity == "critical"
    assert REGRESSING in incident.dedup_key and "@2" in incident.dedup_key
    triggers = [e for e in incident.events if e["event_action"] == "trigger"]
    assert triggers and {e["dedup_key"] for e in triggers} == {incident.dedup_key}
    details = triggers[0]["payload"]["custom_details"]
    text = orjson.dumps(details).decode()
    # payments regresses on both: whichever test decides first names its signal
    assert ("latency_p99_seconds" in text or "error_rate" in text) and "dry_run" in text
    assert pagerduty.change_events, "the rollback should show on the incident timeline"

    (alert,) = _am_alerts(alertmanager)
    labels = alert["labels"]
    assert isinstance(labels, dict)
    assert labels["namespace"] == "shop" and labels["severity"] == "critical"
    assert labels["alertname"] == "CanaryRegression"
    assert ROUTING_KEY not in svc.output()
