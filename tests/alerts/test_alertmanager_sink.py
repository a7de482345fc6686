"""Against a real Alertmanager: alerts arrive with Prometheus-style labels, and a resolve ends
them. Each test uses its own service name so tests sharing the Alertmanager do not interfere."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from config.alerting import AlertingSettings, LinkTemplate
from detector.core.types import Action, Severity, Verdict
from rollback.alerting import AlertRouter
from rollback.sinks.alertmanager import AlertmanagerSink
from rollback.sinks.base import Alert, AlertEvent, DeliveryFailed
from rollback.sinks.fake import FakeTime, sample_decision, sample_outcome
from rollback.targets.base import OutcomeStatus

pytestmark = pytest.mark.integration  # a real Alertmanager, started by the session fixture

DEADLINE = 20.0


async def alerts_for(am_url: str, service: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as c:
        resp = await c.get(f"{am_url}/api/v2/alerts", params={"filter": f'service="{service}"'})
    resp.raise_for_status()
    found: list[dict[str, Any]] = resp.json()
    return found


async def wait_for(
    am_url: str, service: str, *, active: bool, count: int = 1
) -> list[dict[str, Any]]:
    """Poll until the service has ``count`` active alerts (``active``) or none."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        found = await alerts_for(am_url, service)
        live = [a for a in found if a["status"]["state"] == "active"]
        if (len(live) == count) if active else not live:
            return live
        if loop.time() > deadline:
            pytest.fail(f"alerts of {service} not as expected (active={active}): {found}")
        await asyncio.sleep(0.1)  # polling interval under a deadline


async def test_regression_appears_with_labels_and_resolves(
    alertmanager: str, tmp_path: Path, registry: CollectorRegistry
) -> None:
    service = f"checkout-{uuid.uuid4().hex[:8]}"
    t = FakeTime()
    sink = AlertmanagerSink(alertmanager, labels={"team": "payments"})
    links = (
        LinkTemplate(text="Grafana", href="https://grafana.example/d/x?var-service={service}"),
    )
    async with AlertRouter(
        AlertingSettings(links=links),
        sinks={"am": sink},
        outbox_path=tmp_path / "outbox.sqlite3",
        clock=t.clock,
        sleep=t.sleep,
        registry=registry,
    ) as router:
        await router.notify(sample_decision(service=service), sample_outcome())
        assert await router.drain(DEADLINE)
        (alert,) = await wait_for(alertmanager, service, active=True)
        assert alert["labels"] == {
            "alertname": "CanaryRegression",
            "severity": "critical",
            "service": service,
            "namespace": "shop",
            "revision": "7f9c2d1",
            "team": "payments",
        }
        ann = alert["annotations"]
        assert "latency_p99_seconds" in ann["summary"]
        assert ann["action"].startswith("rollback done")
        assert "412 ms" in ann["description"]
        assert alert["generatorURL"] == f"https://grafana.example/d/x?var-service={service}"

        recovered = sample_decision(
            service=service,
            verdict=Verdict.RECOVERED,
            action=Action.NONE,
            severity=Severity.INFO,
            ts=sample_decision().ts + 120,
        )
        await router.notify(recovered, None)
        assert await router.drain(DEADLINE)
        await wait_for(alertmanager, service, active=False)
    await sink.aclose()


async def test_failed_rollback_and_no_data_have_their_own_alertnames(alertmanager: str) -> None:
    service = f"cart-{uuid.uuid4().hex[:8]}"
    sink = AlertmanagerSink(alertmanager)
    d = sample_decision(service=service)
    failed = Alert(
        AlertEvent.TRIGGER,
        d,
        Severity.CRITICAL,
        "ROLLBACK FAILED",
        sample_outcome(OutcomeStatus.FAILED),
    )
    nd = sample_decision(
        service=service, verdict=Verdict.NO_DATA, severity=Severity.WARNING, action=Action.ALERT
    )
    await sink.send(failed)
    await sink.send(Alert(AlertEvent.TRIGGER, nd, Severity.WARNING, "no data"))
    live = await wait_for(alertmanager, service, active=True, count=2)
    names = sorted((a["labels"]["alertname"], a["labels"]["severity"]) for a in live)
    assert names == [("CanaryNoData", "warning"), ("CanaryRollbackFailed", "critical")]
    await sink.send(
        Alert(
            AlertEvent.RESOLVE, d, Severity.CRITICAL, "fixed", sample_outcome(OutcomeStatus.FAILED)
        )
    )
    await sink.send(Alert(AlertEvent.RESOLVE, nd, Severity.WARNING, "data is back"))
    await wait_for(alertmanager, service, active=False)
    await sink.aclose()


async def test_alertmanager_refusals_are_not_retryable(alertmanager: str) -> None:
    sink = AlertmanagerSink(alertmanager, labels={"not a label": "x"})  # invalid label name
    with pytest.raises(DeliveryFailed) as info:
        await sink.send(Alert(AlertEvent.TRIGGER, sample_decision(), Severity.CRITICAL, "x"))
    await sink.aclose()
    assert not info.value.retryable
    assert "400" in info.value.reason
