"""The alert-sink contract (``rollback/sinks/base.py``), checked for every implementation:
``pagerduty`` against the contract-checking fake receiver, ``alertmanager`` against a real
Alertmanager, ``log`` and ``fake`` in process.

Each harness says how to see, at the receiver, whether the sample rollout's alert is open.
"""

from __future__ import annotations

import asyncio
import logging
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from config.alerting import SinkSettings
from detector.core.types import Action, Decision, Severity, Verdict
from detector.localbroker import free_port
from rollback.sinks import render
from rollback.sinks.alertmanager import AlertmanagerSink
from rollback.sinks.alertmanager_local import LocalAlertmanager
from rollback.sinks.base import Alert, AlertEvent, AlertSink, DeliveryFailed
from rollback.sinks.fake import FakeSink, sample_decision, sample_outcome
from rollback.sinks.fake_pagerduty import FakePagerDuty
from rollback.sinks.log import LogSink
from rollback.sinks.pagerduty import PagerDutySink
from rollback.sinks.registry import SINK_TYPES
from rollback.targets.base import ActionOutcome, OutcomeStatus

KEY = "CONTRACTKEY" + "x" * 21
DEADLINE = 20.0
ALL = ["pagerduty", pytest.param("alertmanager", marks=pytest.mark.integration), "log", "fake"]
CAN_FAIL = ["pagerduty", "alertmanager", "fake"]


@dataclass
class Harness:
    sink: AlertSink
    open_count: Callable[[Decision], Awaitable[int]]  # open alerts of this rollout at the receiver


@pytest.fixture(scope="module")
def alertmanager_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with LocalAlertmanager(Path(tmp_path_factory.mktemp("am-contract"))) as am:
        yield am.url


def _recorded_open(sent: list[Alert]) -> Callable[[Decision], Awaitable[int]]:
    async def count(d: Decision) -> int:
        last = [
            a.event for a in sent if a.decision.service == d.service and a.event.value != "change"
        ]
        return 1 if last and last[-1] is AlertEvent.TRIGGER else 0

    return count


@pytest.fixture(params=ALL)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    kind: str = request.param
    if kind == "pagerduty":
        async with FakePagerDuty() as pd:
            sink = PagerDutySink(routing_key=SecretStr(KEY), base_url=pd.url)

            async def pd_open(d: Decision) -> int:
                return sum(1 for i in pd.open_incidents() if f"/{d.service}@" in i.dedup_key)

            yield Harness(sink, pd_open)
            await sink.aclose()
            assert all(r.status == 202 for r in pd.requests), [r.errors for r in pd.requests]
    elif kind == "alertmanager":
        url: str = request.getfixturevalue("alertmanager_url")
        am_sink = AlertmanagerSink(url)

        async def am_open(d: Decision) -> int:
            async with httpx.AsyncClient() as c:
                resp = await c.get(
                    f"{url}/api/v2/alerts", params={"filter": f'service="{d.service}"'}
                )
            return sum(1 for a in resp.json() if a["status"]["state"] == "active")

        yield Harness(am_sink, am_open)
        await am_sink.aclose()
    elif kind == "log":
        log_sink = LogSink()
        yield Harness(log_sink, _recorded_open(log_sink.sent))
    else:
        fake = FakeSink()
        yield Harness(fake, _recorded_open(fake.sent))


async def eventually(h: Harness, d: Decision, expected: int) -> None:
    """The receiver may apply a send asynchronously (Alertmanager): poll under a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while (got := await h.open_count(d)) != expected:
        assert loop.time() < deadline, f"{got} open alerts, expected {expected}"
        await asyncio.sleep(0.05)  # poll interval, under the deadline


def alerts_for(d: Decision, outcome: ActionOutcome | None) -> tuple[Alert, Alert, Alert]:
    failed = outcome is not None and outcome.status is OutcomeStatus.FAILED
    sev = Severity.CRITICAL if failed else d.severity
    trig = Alert(
        AlertEvent.TRIGGER,
        d,
        sev,
        render.trigger_summary(d, outcome),
        outcome,
        (("Dashboard", "https://grafana.example/d/x"),),
    )
    change = Alert(AlertEvent.CHANGE, d, sev, render.change_summary(d, outcome), outcome)
    resolve = Alert(AlertEvent.RESOLVE, d, sev, render.resolve_summary(d, "recovered"), outcome)
    return trig, change, resolve


CASES = {
    "regression, rolled back": (Verdict.REGRESSION, Action.ROLLBACK, Severity.CRITICAL, "done"),
    "regression, rollback failed": (
        Verdict.REGRESSION,
        Action.ROLLBACK,
        Severity.CRITICAL,
        "failed",
    ),
    "regression, dry run": (Verdict.REGRESSION, Action.ROLLBACK, Severity.CRITICAL, "dry_run"),
    "regression, alert only": (Verdict.REGRESSION, Action.ALERT, Severity.ERROR, None),
    "shared anomaly": (Verdict.ANOMALY, Action.ALERT, Severity.WARNING, None),
    "no data": (Verdict.NO_DATA, Action.ALERT, Severity.WARNING, None),
    "info": (Verdict.ANOMALY, Action.ALERT, Severity.INFO, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_trigger_repeat_change_resolve(harness: Harness, case: str) -> None:
    verdict, action, severity, status = CASES[case]
    d = sample_decision(
        service=f"svc-{uuid.uuid4().hex[:10]}", verdict=verdict, action=action, severity=severity
    )
    outcome = sample_outcome(OutcomeStatus(status)) if status else None
    trig, change, resolve = alerts_for(d, outcome)
    await harness.sink.send(trig)
    await harness.sink.send(trig)  # repeats are harmless: still one alert
    await harness.sink.send(change)
    await eventually(harness, d, 1)
    await harness.sink.send(resolve)
    await eventually(harness, d, 0)


async def test_type_name_and_repr_hold_no_secret(harness: Harness) -> None:
    assert harness.sink.type_name in {*SINK_TYPES, "fake"}
    assert KEY not in repr(harness.sink)


@pytest.fixture(params=CAN_FAIL)
async def unreachable(request: pytest.FixtureRequest) -> AsyncIterator[AlertSink]:
    dead = f"http://127.0.0.1:{free_port()}"
    sink: AlertSink
    if request.param == "pagerduty":
        sink = PagerDutySink(routing_key=SecretStr(KEY), base_url=dead)
    elif request.param == "alertmanager":
        sink = AlertmanagerSink(dead)
    else:
        fake = FakeSink()
        fake.fail(1, retryable=True, reason="connection refused")
        sink = fake
    yield sink
    aclose = getattr(sink, "aclose", None)
    if aclose is not None:
        await aclose()


async def test_an_unreachable_receiver_is_a_retryable_failure(
    unreachable: AlertSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    trig, _, _ = alerts_for(sample_decision(), sample_outcome())
    with pytest.raises(DeliveryFailed) as info:
        await unreachable.send(trig)
    assert info.value.retryable
    assert info.value.reason
    assert KEY not in str(info.value)
    assert KEY not in caplog.text


def test_every_configurable_type_is_buildable() -> None:
    union = typing.get_args(typing.get_args(SinkSettings)[0])
    schema_types = {typing.get_args(m.model_fields["type"].annotation)[0] for m in union}
    assert schema_types == set(SINK_TYPES)
