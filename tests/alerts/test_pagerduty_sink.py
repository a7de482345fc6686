"""The PagerDuty sink: what it sends (checked by the fake receiver against the contract), how it
classifies failures, its rate limit, and that the routing key never leaks."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from config.alerting import RoutingKeyError, RoutingKeySource
from detector.core.types import Action, Severity, Verdict
from detector.localbroker import free_port
from rollback.sinks import render
from rollback.sinks.base import Alert, AlertEvent, DeliveryFailed
from rollback.sinks.fake import FakeTime, sample_decision, sample_outcome
from rollback.sinks.fake_pagerduty import FakePagerDuty
from rollback.sinks.limits import RateLimiter
from rollback.sinks.pagerduty import PagerDutySink, key_provider
from rollback.sinks.routing import render_links
from rollback.targets.base import OutcomeStatus


def regression_alert(**over: object) -> Alert:
    d = sample_decision()
    outcome = sample_outcome()
    fields: dict[str, object] = {
        "event": AlertEvent.TRIGGER,
        "decision": d,
        "severity": d.severity,
        "summary": render.trigger_summary(d, outcome),
        "outcome": outcome,
        "links": (("Grafana", "https://grafana.example/d/x?var-service=checkout"),),
    }
    fields.update(over)
    return Alert(**fields)  # type: ignore[arg-type]


async def test_trigger_carries_the_evidence_and_opens_one_incident(
    fake_pd: FakePagerDuty, routing_key: str
) -> None:
    sink = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    alert = regression_alert()
    await sink.send(alert)
    await sink.send(alert)  # a repeat folds into the same incident
    await sink.aclose()
    assert [r.status for r in fake_pd.requests] == [202, 202]
    assert len(fake_pd.incidents) == 1
    body = fake_pd.requests[0].body
    assert body["routing_key"] == routing_key
    assert body["dedup_key"] == "canary-sentinel:shop/checkout@7f9c2d1:regression"
    payload = body["payload"]
    assert payload["severity"] == "critical"
    summary = payload["summary"]
    for words in ("checkout", "latency_p99_seconds", "412 ms", "201 ms", "rollback done"):
        assert words in summary
    details = payload["custom_details"]
    sig = details["signals"][0]
    assert (sig["canary"], sig["baseline"], sig["effect"]) == (0.412, 0.201, 2.05)
    assert (sig["score"], sig["threshold"]) == (9.21, 6.91)
    assert details["action"] == "rollback"
    assert details["outcome"]["status"] == "done"
    assert body["links"] == [
        {"href": "https://grafana.example/d/x?var-service=checkout", "text": "Grafana"}
    ]


@pytest.mark.parametrize("severity", list(Severity))
async def test_severity_maps_one_to_one(
    fake_pd: FakePagerDuty, routing_key: str, severity: Severity
) -> None:
    sink = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    await sink.send(regression_alert(severity=severity))
    await sink.aclose()
    assert fake_pd.incidents[0].severity == severity.value


async def test_resolve_and_change_events(fake_pd: FakePagerDuty, routing_key: str) -> None:
    sink = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    alert = regression_alert()
    await sink.send(alert)
    d = alert.decision
    await sink.send(
        Alert(
            AlertEvent.CHANGE,
            d,
            d.severity,
            render.change_summary(d, alert.outcome),
            alert.outcome,
            alert.links,
        )
    )
    await sink.send(Alert(AlertEvent.RESOLVE, d, d.severity, "resolved", alert.outcome))
    await sink.aclose()
    assert [r.path for r in fake_pd.requests] == [
        "/v2/enqueue",
        "/v2/change/enqueue",
        "/v2/enqueue",
    ]
    assert all(r.status == 202 for r in fake_pd.requests)
    assert fake_pd.incidents[0].status == "resolved"
    assert "rollback done" in fake_pd.change_events[0]["payload"]["summary"]


async def test_long_texts_are_clipped_to_pagerdutys_limits(
    fake_pd: FakePagerDuty, routing_key: str
) -> None:
    d = sample_decision(reason="x" * 5000, signals=())
    alert = regression_alert(decision=d, summary=render.trigger_summary(d, None))
    assert len(alert.summary) == 1024
    sink = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    await sink.send(alert)
    await sink.aclose()
    assert fake_pd.requests[0].status == 202


def test_dedup_key_is_stable_and_bounded() -> None:
    a = regression_alert()
    assert a.dedup_key == regression_alert().dedup_key
    long = sample_decision(service="s" * 300)
    key = regression_alert(decision=long).dedup_key
    assert len(key) <= 255
    assert key == regression_alert(decision=long).dedup_key
    assert key != regression_alert(decision=sample_decision(service="s" * 301)).dedup_key
    # recovered resolves the regression's key
    rec = sample_decision(verdict=Verdict.RECOVERED, action=Action.NONE)
    assert regression_alert(decision=rec).dedup_key == a.dedup_key


def test_links_are_templated_and_url_encoded() -> None:
    from config.alerting import LinkTemplate

    t = LinkTemplate(text="G", href="https://grafana/d/x?var-service={service}&rev={revision}")
    d = sample_decision(service="check out", revision="a&b")
    assert render_links([t], d) == (("G", "https://grafana/d/x?var-service=check%20out&rev=a%26b"),)


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (404, False), (429, True), (500, True), (503, True)]
)
async def test_failures_are_classified(
    fake_pd: FakePagerDuty, routing_key: str, status: int, retryable: bool
) -> None:
    fake_pd.script(status, retry_after=7)
    sink = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    with pytest.raises(DeliveryFailed) as info:
        await sink.send(regression_alert())
    await sink.aclose()
    assert info.value.retryable is retryable
    assert str(status) in info.value.reason
    assert info.value.retry_after == (7.0 if retryable else None)
    assert routing_key not in str(info.value)


async def test_a_real_400_reports_pagerdutys_reason(fake_pd: FakePagerDuty) -> None:
    sink = PagerDutySink(routing_key=SecretStr("short-key"), base_url=fake_pd.url)
    with pytest.raises(DeliveryFailed) as info:
        await sink.send(regression_alert())
    await sink.aclose()
    assert not info.value.retryable
    assert "Length of 'routing_key' is incorrect" in info.value.reason
    assert "short-key" not in info.value.reason


async def test_network_errors_are_retryable_and_do_not_leak_the_key(
    routing_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sink = PagerDutySink(
        routing_key=SecretStr(routing_key), base_url=f"http://127.0.0.1:{free_port()}"
    )
    with pytest.raises(DeliveryFailed) as info:
        await sink.send(regression_alert())
    await sink.aclose()
    assert info.value.retryable
    assert "network error" in info.value.reason
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__  # the httpx error (it holds the request) is dropped
    assert routing_key not in str(info.value)
    assert routing_key not in caplog.text


async def test_the_key_never_appears_in_logs_or_reprs(
    fake_pd: FakePagerDuty, routing_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore debug output included
    sink = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    fake_pd.script(400)
    with pytest.raises(DeliveryFailed):
        await sink.send(regression_alert())
    await sink.send(regression_alert())
    await sink.aclose()
    assert caplog.records, "the HTTP stack logged something to check"
    assert routing_key not in caplog.text
    assert routing_key not in repr(sink)
    assert routing_key not in repr(SecretStr(routing_key))


async def test_calls_stay_within_the_rate_limit(fake_pd: FakePagerDuty, routing_key: str) -> None:
    t = FakeTime()
    limiter = RateLimiter(3, 60.0, clock=t.clock, sleep=t.sleep)
    sink = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url, limiter=limiter)
    stamps: list[float] = []
    for _ in range(7):
        await sink.send(regression_alert())
        stamps.append(t.now)
    await sink.aclose()
    assert len(fake_pd.requests) == 7
    for i in range(len(stamps) - 3):
        assert stamps[i + 3] - stamps[i] >= 60.0, "more than 3 calls inside one 60 s window"
    assert limiter.waited >= 120.0


def test_key_from_env_is_length_checked_without_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PD_KEY_UNDER_TEST", "tooshort-secret-value")
    src = RoutingKeySource(env="PD_KEY_UNDER_TEST")
    with pytest.raises(RoutingKeyError) as info:
        src.read()
    assert "21 characters" in str(info.value)
    assert "tooshort-secret-value" not in str(info.value)
    assert "tooshort-secret-value" not in src.status()
    monkeypatch.delenv("PD_KEY_UNDER_TEST")
    assert "not set" in src.status()


def test_key_from_file_is_re_read_when_it_changes(tmp_path: Path) -> None:
    f = tmp_path / "routing-key"
    f.write_text("k" * 32 + "\n")
    provide = key_provider(RoutingKeySource(file=f))
    assert provide().get_secret_value() == "k" * 32
    f.write_text("m" * 32)
    import os

    os.utime(f, (1, 1))  # a rotated Secret gets a new mtime; make sure it differs
    assert provide().get_secret_value() == "m" * 32
    f.write_text("bad")
    os.utime(f, (2, 2))
    assert provide().get_secret_value() == "m" * 32  # a bad rotation keeps the last good key


async def test_dry_run_and_failed_outcomes_read_differently() -> None:
    d = sample_decision()
    failed = render.trigger_summary(d, sample_outcome(OutcomeStatus.FAILED, "403 forbidden"))
    assert failed.startswith("ROLLBACK FAILED")
    assert "403 forbidden" in failed
    dry = render.trigger_summary(d, sample_outcome(OutcomeStatus.DRY_RUN))
    assert "dry run, nothing changed" in dry


async def test_http_client_can_be_shared(fake_pd: FakePagerDuty, routing_key: str) -> None:
    async with httpx.AsyncClient() as client:
        sink = PagerDutySink(
            routing_key=SecretStr(routing_key), base_url=fake_pd.url, client=client
        )
        await sink.send(regression_alert())
        await sink.aclose()  # not its client: stays open
        assert not client.is_closed
    assert len(fake_pd.incidents) == 1
