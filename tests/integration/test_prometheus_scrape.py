"""The service's ``/metrics`` as a user's Prometheus reads it: a real Prometheus server scrapes
the running service, the target is up with no scrape error (the exposition parses), and the
counters it stores agree with what the service did."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from detector.demo import DemoPlan, demo_lines
from detector.localbroker import LocalBroker
from tests.integration.harness import ServiceProcess, keyed, produce, service_with_topics
from tests.prometheus_fixture import LocalPrometheus

pytestmark = pytest.mark.integration

PLAN = DemoPlan(history_minutes=15, canary_minutes=8, regress_at_minute=3)
JOB = "canary-sentinel"


def _value(prom: LocalPrometheus, promql: str) -> float | None:
    result = prom.query(promql)
    return float(result[0]["value"][1]) if result else None


def test_a_real_prometheus_scrapes_what_the_service_did(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    cfg, path = service_with_topics(kafka_broker.bootstrap, tmp_path)
    lines = list(demo_lines(PLAN))
    svc = ServiceProcess(cfg, path, tmp_path / "service")
    prom = LocalPrometheus(tmp_path / "prometheus", [f"127.0.0.1:{cfg.kafka.web_port}"], JOB)
    svc.start()
    prom.start()
    try:
        asyncio.run(produce(kafka_broker.bootstrap, cfg.kafka.metrics_topic, keyed(lines)))
        svc.wait_for(
            "every record to be folded in",
            lambda: svc.counted("canary_sentinel_records_total") == len(lines),
        )
        # Prometheus holds the same count once it has scraped after that
        svc.wait_for(
            "Prometheus to scrape the final count",
            lambda: (
                _value(prom, f'sum(canary_sentinel_records_total{{job="{JOB}"}})') == len(lines)
            ),
            timeout=60.0,
        )
        assert [(t["health"], t["lastError"]) for t in prom.targets_health()] == [("up", "")]
        assert _value(prom, f'up{{job="{JOB}"}}') == 1.0
        rollbacks = f'sum(canary_sentinel_decisions_total{{job="{JOB}",action="rollback"}})'
        assert _value(prom, rollbacks) == 1.0
        assert _value(prom, f'canary_sentinel_services{{job="{JOB}"}}') == 2.0
        names = {
            r["metric"]["__name__"]
            for r in prom.query(f'{{job="{JOB}",__name__=~"canary_sentinel_.*"}}')
        }
        assert {
            "canary_sentinel_records_total",
            "canary_sentinel_decisions_total",
            "canary_sentinel_checkpoints_total",
            "canary_sentinel_late_records",
            "canary_sentinel_services",
        } <= names
    finally:
        prom.stop()
        svc.stop()
