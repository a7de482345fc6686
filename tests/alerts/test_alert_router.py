"""The router: which alerts a decision means, delivery through the outbox (order, backoff, no
retry on 400), health and metrics, and that nothing is lost or doubled across restarts."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from config.alerting import AlertingSettings, LinkTemplate
from detector.core.types import Action, Decision, Severity, Verdict
from rollback.alerting import AlertRouter
from rollback.sinks.base import Alert, AlertEvent, AlertSink
from rollback.sinks.fake import FakeSink, FakeTime, sample_decision, sample_outcome
from rollback.sinks.fake_pagerduty import FakePagerDuty
from rollback.sinks.pagerduty import PagerDutySink
from rollback.sinks.routing import Route
from rollback.targets.base import OutcomeStatus

DEADLINE = 20.0  # seconds of event-loop time a delivery may take before the test fails


def recovered(**kw: Any) -> Decision:
    return sample_decision(
        verdict=Verdict.RECOVERED, action=Action.NONE, severity=Severity.INFO, **kw
    )


def alert_only(verdict: Verdict, severity: Severity, **kw: Any) -> Decision:
    return sample_decision(verdict=verdict, action=Action.ALERT, severity=severity, **kw)


def router(
    tmp_path: Path,
    sinks: dict[str, AlertSink],
    t: FakeTime,
    registry: CollectorRegistry,
    **kw: object,
) -> AlertRouter:
    return AlertRouter(
        kw.pop("settings", None) or AlertingSettings(),  # type: ignore[arg-type]
        sinks=sinks,
        outbox_path=tmp_path / "outbox.sqlite3",
        clock=t.clock,
        sleep=t.sleep,
        rand=lambda: 0.5,
        registry=registry,
        **kw,  # type: ignore[arg-type]
    )


def files_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_rollback_done_triggers_and_marks_the_timeline(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    sink = FakeSink()
    links = (LinkTemplate(text="Grafana", href="https://g/d?var-service={service}"),)
    async with router(
        tmp_path, {"fake": sink}, fake_time, registry, settings=AlertingSettings(links=links)
    ) as r:
        await r.notify(sample_decision(), sample_outcome())
        assert await r.drain(DEADLINE)
    assert [a.event for a in sink.sent] == [AlertEvent.TRIGGER, AlertEvent.CHANGE]
    trig = sink.sent[0]
    assert trig.severity is Severity.CRITICAL
    assert trig.links == (("Grafana", "https://g/d?var-service=checkout"),)
    assert "rollback done" in trig.summary
    assert (
        metric(registry, "canary_sentinel_alert_deliveries_total", sink="fake", result="delivered")
        == 2
    )


async def test_alert_only_and_none_decisions(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    sink = FakeSink()
    async with router(tmp_path, {"fake": sink}, fake_time, registry) as r:
        await r.notify(sample_decision(action=Action.NONE, severity=Severity.ERROR), None)
        await r.notify(alert_only(Verdict.NO_DATA, Severity.WARNING), None)
        assert await r.drain(DEADLINE)
    assert len(sink.sent) == 1
    assert sink.sent[0].event is AlertEvent.TRIGGER
    assert sink.sent[0].decision.verdict is Verdict.NO_DATA
    assert sink.changes == []  # nothing was rolled back


async def test_a_failed_rollback_pages_critical(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    sink = FakeSink()
    d = sample_decision(severity=Severity.ERROR)
    async with router(tmp_path, {"fake": sink}, fake_time, registry) as r:
        await r.notify(d, sample_outcome(OutcomeStatus.FAILED, "rollouts.argoproj.io is forbidden"))
        assert await r.drain(DEADLINE)
    trig = sink.triggers[0]
    assert trig.severity is Severity.CRITICAL
    assert trig.rollback_failed
    assert trig.summary.startswith("ROLLBACK FAILED")
    assert "forbidden" in trig.summary
    assert len(sink.changes) == 1


async def test_recovery_and_replacement_resolve(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    sink = FakeSink()
    async with router(tmp_path, {"fake": sink}, fake_time, registry) as r:
        await r.notify(sample_decision(revision="r1", ts=100.0), sample_outcome())
        await r.notify(recovered(revision="r1", ts=200.0), None)
        await r.notify(alert_only(Verdict.ANOMALY, Severity.WARNING, revision="r2", ts=300.0), None)
        # a decision about r3 (even one that asks for nothing) closes what r2 had open
        await r.notify(sample_decision(revision="r3", ts=400.0, action=Action.NONE), None)
        # a recovery with nothing open resolves nothing
        await r.notify(recovered(revision="r3", ts=500.0), None)
        assert await r.drain(DEADLINE)
    kinds = [(a.event.value, a.decision.revision) for a in sink.sent]
    assert kinds == [
        ("trigger", "r1"),
        ("change", "r1"),
        ("resolve", "r1"),
        ("change", "r1"),
        ("trigger", "r2"),
        ("resolve", "r2"),
    ]
    assert sink.resolves[0].dedup_key == sink.triggers[0].dedup_key
    assert "replaced by revision r3" in sink.resolves[1].summary


async def test_routes_and_minimum_severity(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    pager, chat = FakeSink("pager"), FakeSink("chat")
    routes = {"cart": Route(sinks=("chat",), min_severity=Severity.INFO)}
    async with router(
        tmp_path,
        {"pager": pager, "chat": chat},
        fake_time,
        registry,
        routes=routes,
        sink_min_severity={"pager": Severity.ERROR},
    ) as r:
        # checkout: both sinks, but the pager takes error and worse only
        await r.notify(alert_only(Verdict.ANOMALY, Severity.WARNING), None)
        await r.notify(sample_decision(service="cart"), sample_outcome())  # cart: chat only
        assert await r.drain(DEADLINE)
    assert [(a.event.value, a.decision.service) for a in chat.sent] == [
        ("trigger", "checkout"),
        ("trigger", "cart"),
        ("change", "cart"),
    ]
    assert pager.sent == []


async def test_notify_returns_before_delivery(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    sink = FakeSink()
    sink.block()
    async with router(tmp_path, {"fake": sink}, fake_time, registry) as r:
        await asyncio.wait_for(r.notify(sample_decision(), None), DEADLINE)
        assert r.health()["sinks"]["fake"]["pending"] == 1
        assert metric(registry, "canary_sentinel_alert_outbox_pending", sink="fake") == 1
        sink.release()
        assert await r.drain(DEADLINE)
        assert r.health()["pending"] == 0
    assert len(sink.sent) == 1


async def test_a_redelivered_decision_does_not_page_twice(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    sink = FakeSink()
    async with router(tmp_path, {"fake": sink}, fake_time, registry) as r:
        for _ in range(3):
            await r.notify(sample_decision(), sample_outcome())
        assert await r.drain(DEADLINE)
        # a later, different outcome for the same rollout is news: a rollback-failed alert
        await r.notify(sample_decision(), sample_outcome(OutcomeStatus.FAILED))
        assert await r.drain(DEADLINE)
    assert [a.event.value for a in sink.sent] == ["trigger", "change", "trigger", "change"]
    assert sink.triggers[1].rollback_failed


async def test_backoff_on_429_then_success(
    tmp_path: Path,
    fake_time: FakeTime,
    registry: CollectorRegistry,
    fake_pd: FakePagerDuty,
    routing_key: str,
) -> None:
    fake_pd.script(429, times=3)
    pd = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    async with router(tmp_path, {"pd": pd}, fake_time, registry) as r:
        await r.notify(sample_decision(), None)
        assert await r.drain(DEADLINE)
        assert r.health()["sinks"]["pd"]["up"] is True
    await pd.aclose()
    # rand() = 0.5: three quarters of 2, 4, 8 seconds
    assert fake_time.sleeps == [1.5, 3.0, 6.0]
    assert [q.status for q in fake_pd.requests] == [429, 429, 429, 202]
    assert len(fake_pd.incidents) == 1
    assert (
        metric(registry, "canary_sentinel_alert_deliveries_total", sink="pd", result="retried") == 3
    )
    assert (
        metric(registry, "canary_sentinel_alert_deliveries_total", sink="pd", result="delivered")
        == 1
    )


async def test_backoff_is_capped(
    tmp_path: Path, registry: CollectorRegistry, fake_pd: FakePagerDuty, routing_key: str
) -> None:
    t = FakeTime()
    fake_pd.script(500, times=8)
    pd = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    async with router(tmp_path, {"pd": pd}, t, registry) as r:
        await r.notify(sample_decision(), None)
        assert await r.drain(DEADLINE)
    await pd.aclose()
    assert len(t.sleeps) == 8
    assert max(t.sleeps) <= 60.0
    assert t.sleeps == sorted(t.sleeps)
    assert t.sleeps[-1] == 45.0  # 3/4 of the 60 s cap


async def test_a_400_is_not_retried_and_is_logged_with_its_reason(
    tmp_path: Path,
    fake_time: FakeTime,
    registry: CollectorRegistry,
    fake_pd: FakePagerDuty,
    routing_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_pd.script(
        400,
        {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["Severity is not valid"],
        },
    )
    pd = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    d = sample_decision()
    async with router(tmp_path, {"pd": pd}, fake_time, registry) as r:
        await r.notify(d, None)
        assert await r.drain(DEADLINE)
        health = r.health()["sinks"]["pd"]
        # the rejected trigger is not open: a recovery sends no resolve for it
        await r.notify(recovered(ts=d.ts + 60), None)
        assert await r.drain(DEADLINE)
    await pd.aclose()
    assert len(fake_pd.requests) == 1
    assert fake_time.sleeps == []
    assert (
        metric(registry, "canary_sentinel_alert_deliveries_total", sink="pd", result="rejected")
        == 1
    )
    assert health["rejected"] == 1
    assert health["up"] is True
    assert "Severity is not valid" in health["last_error"]
    rejected = [rec for rec in caplog.records if "rejected" in rec.getMessage()]
    assert len(rejected) == 1
    assert "Severity is not valid" in rejected[0].getMessage()
    assert d.reason not in caplog.text  # the reason, not the body
    assert routing_key not in caplog.text


async def test_a_sink_that_stays_down_shows_on_health_and_metrics(
    tmp_path: Path, registry: CollectorRegistry, routing_key: str
) -> None:
    t = FakeTime(block_after=3)
    down, fine = FakeSink("down"), FakeSink("fine")
    down.fail(100, reason="503 from receiver")
    async with router(tmp_path, {"down": down, "fine": fine}, t, registry) as r:
        await r.notify(sample_decision(), None)
        await asyncio.wait_for(t.parked.wait(), DEADLINE)
        await asyncio.wait_for(fine.delivered.wait(), DEADLINE)
        h = r.health()
        assert h["status"] == "degraded"
        assert h["sinks"]["down"]["up"] is False
        assert h["sinks"]["down"]["pending"] == 1
        assert h["sinks"]["down"]["consecutive_failures"] == 4
        assert h["sinks"]["down"]["last_error"] == "503 from receiver"
        assert h["sinks"]["fine"]["up"] is True  # one sink down does not hold up the others
        assert metric(registry, "canary_sentinel_alert_sink_up", sink="down") == 0
        assert metric(registry, "canary_sentinel_alert_sink_up", sink="fine") == 1
        assert metric(registry, "canary_sentinel_alert_outbox_pending", sink="down") == 1
        assert routing_key not in repr(h)


async def test_one_incident_across_a_restart(
    tmp_path: Path, registry: CollectorRegistry, fake_pd: FakePagerDuty, routing_key: str
) -> None:
    d, outcome = sample_decision(), sample_outcome()
    for _ in range(2):  # the worker restarts and its decisions are replayed
        pd = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
        async with router(tmp_path, {"pd": pd}, FakeTime(), registry) as r:
            await r.notify(d, outcome)
            assert await r.drain(DEADLINE)
        await pd.aclose()
    assert len(fake_pd.incidents) == 1
    assert len(fake_pd.change_events) == 1


async def test_delivered_but_not_marked_is_resent_and_folds(
    tmp_path: Path, registry: CollectorRegistry, fake_pd: FakePagerDuty, routing_key: str
) -> None:
    """A crash between the send and the mark: at-least-once, and PagerDuty dedups."""
    pd = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    async with router(tmp_path, {"pd": pd}, FakeTime(), registry) as r:
        await r.notify(sample_decision(), None)
        assert await r.drain(DEADLINE)
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:  # forget the mark, as a crash would
        db.execute("UPDATE outbox SET state = 'pending'")
    async with router(tmp_path, {"pd": pd}, FakeTime(), registry) as r:
        assert await r.drain(DEADLINE)
    await pd.aclose()
    assert [q.body["event_action"] for q in fake_pd.requests] == ["trigger", "trigger"]
    assert len(fake_pd.incidents) == 1


async def test_stopping_mid_delivery_loses_nothing(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    hung = FakeSink()
    hung.block()
    r1 = router(tmp_path, {"fake": hung}, fake_time, registry)
    await r1.start()
    await r1.notify(sample_decision(), sample_outcome())
    await asyncio.wait_for(hung.called.wait(), DEADLINE)  # the send is in flight
    await r1.stop()  # abrupt: cancels the in-flight send
    assert hung.sent == []
    fresh = FakeSink()
    async with router(tmp_path, {"fake": fresh}, fake_time, registry) as r2:
        assert r2.health()["pending"] == 2
        assert await r2.drain(DEADLINE)
    assert [a.event for a in fresh.sent] == [AlertEvent.TRIGGER, AlertEvent.CHANGE]


async def test_open_alerts_are_resent_for_sinks_that_forget(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    am = FakeSink("am", resend_interval=3600.0)
    async with router(tmp_path, {"am": am}, fake_time, registry) as r:
        await r.notify(sample_decision(), None)
        assert await r.drain(DEADLINE)
        assert await r.resend_open("am") == 1
        await r.notify(recovered(ts=2e9), None)
        assert await r.drain(DEADLINE)
        assert await r.resend_open("am") == 0
    assert [a.event.value for a in am.sent] == ["trigger", "trigger", "resolve", "change"]


async def test_notify_before_start_is_an_error(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    r = router(tmp_path, {"fake": FakeSink()}, fake_time, registry)
    with pytest.raises(RuntimeError, match="start"):
        await r.notify(sample_decision(), None)


def test_routes_must_name_known_sinks(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    with pytest.raises(ValueError, match="unknown sinks"):
        router(tmp_path, {"a": FakeSink()}, fake_time, registry, routes={"x": Route(("b",))})


async def test_open_alerts_are_resent_while_idle(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    am = FakeSink("am", resend_interval=0.05)
    async with router(tmp_path, {"am": am}, fake_time, registry) as r:
        await r.notify(sample_decision(), None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while len(am.sent) < 3:  # the trigger, then at least two re-sends
            assert loop.time() < deadline, am.sent
            am.delivered.clear()
            await asyncio.wait_for(am.delivered.wait(), DEADLINE)
    assert {a.dedup_key for a in am.sent} == {am.sent[0].dedup_key}
    assert all(a.event is AlertEvent.TRIGGER for a in am.sent)


async def test_an_internal_error_does_not_stop_delivery(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    class Buggy(FakeSink):
        calls = 0

        async def send(self, alert: Alert) -> None:
            Buggy.calls += 1
            if Buggy.calls == 1:
                raise KeyError("bug")
            await super().send(alert)

    sink = Buggy()
    async with router(tmp_path, {"buggy": sink}, fake_time, registry) as r:
        await r.notify(sample_decision(), None)
        assert await r.drain(DEADLINE)
    assert len(sink.sent) == 1
    assert len(fake_time.sleeps) == 1


async def test_the_outbox_file_never_holds_the_routing_key(
    tmp_path: Path,
    fake_time: FakeTime,
    registry: CollectorRegistry,
    fake_pd: FakePagerDuty,
    routing_key: str,
) -> None:
    fake_pd.script(500)  # one retry, so the failure reason is stored too
    pd = PagerDutySink(routing_key=SecretStr(routing_key), base_url=fake_pd.url)
    async with router(tmp_path, {"pd": pd}, fake_time, registry) as r:
        await r.notify(sample_decision(), sample_outcome(OutcomeStatus.FAILED))
        assert await r.drain(DEADLINE)
        assert routing_key not in repr(r.health())
    await pd.aclose()
    assert len(fake_pd.incidents) == 1
    stored = await asyncio.to_thread(files_bytes, tmp_path)
    assert b"canary-sentinel:shop/checkout" in stored  # the alerts are there...
    assert routing_key.encode() not in stored  # ...the key is not


async def test_a_recovery_resolves_only_the_episode_it_names(
    tmp_path: Path, fake_time: FakeTime, registry: CollectorRegistry
) -> None:
    from dataclasses import replace

    sink = FakeSink()
    async with router(tmp_path, {"fake": sink}, fake_time, registry) as r:
        await r.notify(sample_decision(revision="r1", ts=100.0), sample_outcome())
        await r.notify(alert_only(Verdict.NO_DATA, Severity.WARNING, revision="r1", ts=150.0), None)
        # the canary reports again: that ends the no-data episode, not the regression page
        await r.notify(replace(recovered(revision="r1", ts=200.0), recovers=Verdict.NO_DATA), None)
        assert await r.drain(DEADLINE)
    resolved = {a.dedup_key for a in sink.resolves}
    assert [a.decision.verdict for a in sink.triggers] == [Verdict.REGRESSION, Verdict.NO_DATA]
    assert resolved == {sink.triggers[1].dedup_key}
