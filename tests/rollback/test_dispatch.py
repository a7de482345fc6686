"""Unit tests of rollback.dispatch with the fake target, the in-memory ledger and a recording
notifier: guardrails, retries with backoff, no retry on permanent failures, alerts, ledger."""

from __future__ import annotations

import asyncio

import pytest

from detector.core.types import Action, Severity
from rollback.dispatch import Dispatcher, RetryPolicy, ServiceTarget
from rollback.guardrails import Limits, Mode
from rollback.kube.errors import TooManyRequests
from rollback.ledger import InMemoryLedger
from rollback.targets.base import OutcomeStatus, RollbackFailed, RollbackTarget
from rollback.targets.dry_run import DryRunTarget
from rollback.targets.fake import FakeTarget
from tests.rollback.helpers import FakeTime, RecordingNotifier, decision, routed_alert

LIMITS = Limits(cooldown_seconds=0, max_actions_per_hour=100)


def make(
    target: RollbackTarget,
    *,
    ledger: InMemoryLedger | None = None,
    mode: Mode = "enforce",
    action: str = "abort",
    limits: Limits = LIMITS,
    emergency: bool = False,
    retry: RetryPolicy | None = None,
) -> tuple[Dispatcher, InMemoryLedger, RecordingNotifier, FakeTime]:
    ledger = ledger if ledger is not None else InMemoryLedger()
    notify = RecordingNotifier()
    t = FakeTime()
    d = Dispatcher(
        resolve=lambda _d: ServiceTarget(target, action, mode),
        ledger=ledger,
        notify=notify,
        limits=limits,
        retry=retry or RetryPolicy(attempts=5, initial_backoff=1.0, max_backoff=4.0, jitter=0.5),
        emergency=lambda: emergency,
        clock=t.clock,
        sleep=t.sleep,
        rng=lambda: 0.5,
    )
    return d, ledger, notify, t


async def test_rollback_done_is_recorded_and_notified() -> None:
    target = FakeTarget()
    d, ledger, notify, _ = make(target)
    await d.start()
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.DONE
    assert target.stopped == {("shop", "web"): "abort"}
    recs = ledger.of("shop/web/7")
    assert [r["phase"] for r in recs] == ["attempt", "outcome"]
    assert recs[1]["status"] == "done"
    assert recs[1]["attempts"] == 1
    assert recs[0]["target"] == "fake"
    assert recs[0]["mode"] == "enforce"
    assert notify.calls == [(decision(), out)]


async def test_alert_and_none_decisions_do_not_act() -> None:
    target = FakeTarget()
    d, ledger, notify, _ = make(target)
    assert await d.handle(decision(action=Action.ALERT)) is None
    assert await d.handle(decision(action=Action.NONE)) is None
    assert target.calls == []
    assert ledger.records == []
    assert [c[1] for c in notify.calls] == [None]


@pytest.mark.parametrize("status", [409, 429, 500, 503])
async def test_retryable_failures_are_retried_with_capped_backoff(status: int) -> None:
    failures = [RollbackFailed(f"HTTP {status}", retryable=True) for _ in range(3)]
    target = FakeTarget(failures=failures)
    d, ledger, _notify, t = make(target)
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.DONE
    assert len(target.calls) == 4
    # initial 1 s, doubling, capped at 4 s, each shortened by jitter 0.5 * u (u = 0.5).
    assert t.sleeps == [0.75, 1.5, 3.0]
    assert ledger.of("shop/web/7")[-1]["attempts"] == 4


async def test_retry_after_of_429_is_honoured_but_capped() -> None:
    cause = TooManyRequests("slow down", status=429)
    cause.retry_after = 3.5
    exc = RollbackFailed("throttled", retryable=True)
    exc.__cause__ = cause
    cause2 = TooManyRequests("slow down", status=429)
    cause2.retry_after = 60.0
    exc2 = RollbackFailed("throttled", retryable=True)
    exc2.__cause__ = cause2
    target = FakeTarget(failures=[exc, exc2])
    d, _, _, t = make(target)
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.DONE
    assert t.sleeps == [3.5, 4.0]


async def test_timeouts_are_retried() -> None:
    class Slow(FakeTarget):
        tries = 0

        async def stop(self, request):  # type: ignore[no-untyped-def]
            self.tries += 1
            if self.tries == 1:
                await asyncio.Event().wait()  # never answers
            return await super().stop(request)

    target = Slow()
    d, ledger, _, _t = make(target, retry=RetryPolicy(attempts=3, initial_backoff=0.0,
                                                         attempt_timeout=0.05))  # fmt: skip
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.DONE
    assert target.tries == 2
    assert len(target.calls) == 1
    assert ledger.of("shop/web/7")[-1]["attempts"] == 2


async def test_gives_up_after_max_attempts_with_critical_alert() -> None:
    target = FakeTarget(always_fail=RollbackFailed("HTTP 503 from PATCH x", retryable=True))
    d, ledger, notify, t = make(target, retry=RetryPolicy(attempts=3, initial_backoff=1.0))
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.FAILED
    assert len(target.calls) == 3
    assert len(t.sleeps) == 2
    assert "after 3 attempts" in out.detail
    rec = ledger.of("shop/web/7")[-1]
    assert rec["phase"] == "outcome"
    assert rec["status"] == "failed"
    assert rec["attempts"] == 3
    assert notify.calls == [(decision(), out)]  # the decision unchanged, with the failure
    severity, summary = routed_alert(decision(), out)
    assert severity == Severity.CRITICAL
    assert "The rollback failed: HTTP 503 from PATCH x after 3 attempts" in summary


@pytest.mark.parametrize(
    "reason",
    [
        "argo rollout shop/web: missing permission: patch rollouts/status in API group "
        "argoproj.io in namespace shop",
        "argo rollout shop/web not found",
    ],
)
async def test_permanent_failures_are_not_retried_and_alert_names_the_cause(reason: str) -> None:
    target = FakeTarget(failures=[RollbackFailed(reason, retryable=False)])
    d, ledger, notify, t = make(target)
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.FAILED
    assert len(target.calls) == 1
    assert t.sleeps == []
    assert out.detail == reason
    assert notify.calls == [(decision(), out)]
    severity, summary = routed_alert(decision(), out)
    assert severity == Severity.CRITICAL
    assert reason in summary
    assert not any(r.get("status") == "done" for r in ledger.of("shop/web/7"))


async def test_unexpected_exception_in_target_is_a_failure_not_done() -> None:
    target = FakeTarget(failures=[KeyError("boom")])
    d, ledger, _notify, _ = make(target)
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.FAILED
    assert "unexpected error" in out.detail
    assert ledger.of("shop/web/7")[-1]["status"] == "failed"


async def test_unbuildable_target_is_a_failed_rollback_without_attempt_record() -> None:
    ledger = InMemoryLedger()
    notify = RecordingNotifier()

    def resolve(_d: object) -> ServiceTarget:
        raise RuntimeError("not running in a cluster")

    d = Dispatcher(resolve=resolve, ledger=ledger, notify=notify, limits=LIMITS)
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.FAILED
    assert "not running in a cluster" in out.detail
    assert [r["phase"] for r in ledger.of("shop/web/7")] == ["outcome"]
    assert routed_alert(*notify.calls[0])[0] == Severity.CRITICAL


async def test_second_decision_for_same_revision_is_refused() -> None:
    target = FakeTarget()
    d, ledger, _notify, _ = make(target)
    await d.handle(decision())
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.SKIPPED
    assert "already acted on rollout revision shop/web/7" in out.detail
    assert len(target.calls) == 1
    assert [r["phase"] for r in ledger.of("shop/web/7")] == ["attempt", "outcome", "refused"]


async def test_concurrent_decisions_for_one_revision_act_once() -> None:
    target = FakeTarget()
    d, _, _, _ = make(target)
    outs = await asyncio.gather(*(d.handle(decision()) for _ in range(5)))
    assert len(target.calls) == 1
    assert sorted(o.status.value for o in outs if o) == ["done"] + ["skipped"] * 4


@pytest.mark.parametrize("first_status", ["done", "failed"])
async def test_restarted_worker_never_repeats_an_attempted_action(first_status: str) -> None:
    ledger = InMemoryLedger()
    failing = first_status == "failed"
    first = FakeTarget(always_fail=RollbackFailed("nope") if failing else None)
    d1, _, _, _ = make(first, ledger=ledger)
    await d1.start()
    await d1.handle(decision())
    # A new worker, same ledger (topic): it loads the history and refuses to act again.
    second = FakeTarget()
    d2, _, _notify, _ = make(second, ledger=ledger)
    await d2.start()
    out = await d2.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.SKIPPED
    assert second.calls == []
    # A different revision of the same service is still acted on.
    out2 = await d2.handle(decision(revision="8"))
    assert out2 is not None
    assert out2.status == OutcomeStatus.DONE


async def test_attempt_recorded_before_the_target_is_called() -> None:
    ledger = InMemoryLedger()

    class Peek(FakeTarget):
        async def stop(self, request):  # type: ignore[no-untyped-def]
            assert [r["phase"] for r in ledger.of(request.rollout.key)] == ["attempt"]
            return await super().stop(request)

    d, _, _, _ = make(Peek(), ledger=ledger)
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.DONE


async def test_emergency_switch_makes_it_a_dry_run_with_planned_requests() -> None:
    target = FakeTarget()
    d, ledger, _notify, _ = make(target, emergency=True)
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.DRY_RUN
    assert target.calls == []
    assert len(target.planned) == 1
    assert out.requests[0]["path"] == "fake://shop/web"
    rec = ledger.of("shop/web/7")
    assert rec[0]["mode"] == "dry-run"
    assert rec[1]["status"] == "dry_run"
    assert rec[1]["requests"] == [dict(out.requests[0])]


async def test_emergency_switch_is_read_before_each_action() -> None:
    switch = {"on": True}
    target = FakeTarget()
    d = Dispatcher(
        resolve=lambda _d: ServiceTarget(target, "abort", "enforce"),
        ledger=InMemoryLedger(),
        notify=RecordingNotifier(),
        limits=LIMITS,
        emergency=lambda: switch["on"],
    )
    first = await d.handle(decision(revision="1"))
    switch["on"] = False
    second = await d.handle(decision(revision="2"))
    assert first is not None
    assert first.status == OutcomeStatus.DRY_RUN
    assert second is not None
    assert second.status == OutcomeStatus.DONE


async def test_service_in_dry_run_mode_and_dry_run_target() -> None:
    target = FakeTarget()
    d, _, _, _ = make(target, mode="dry-run")
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.DRY_RUN
    assert target.calls == []
    d2, ledger, _, _ = make(DryRunTarget(), mode="enforce")
    out2 = await d2.handle(decision())
    assert out2 is not None
    assert out2.status == OutcomeStatus.DRY_RUN
    assert ledger.of("shop/web/7")[0]["mode"] == "dry-run"


async def test_cooldown_refusal_is_notified_as_skipped() -> None:
    target = FakeTarget()
    d, _, notify, t = make(target, limits=Limits(cooldown_seconds=600, max_actions_per_hour=5))
    await d.handle(decision(service="web"))
    t.now += 60
    out = await d.handle(decision(service="api"))
    assert out is not None
    assert out.status == OutcomeStatus.SKIPPED
    assert out.detail.startswith("guardrail: cooldown")
    assert notify.calls[-1][1] is out
    t.now += 600
    out3 = await d.handle(decision(service="api"))
    assert out3 is not None
    assert out3.status == OutcomeStatus.DONE


async def test_ledger_outage_does_not_stop_the_rollback() -> None:
    ledger = InMemoryLedger()
    ledger.fail_appends = True
    target = FakeTarget()
    d, _, _notify, _ = make(target, ledger=ledger)
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.DONE
    # ... and the in-memory history still refuses a repeat.
    again = await d.handle(decision())
    assert again is not None
    assert again.status == OutcomeStatus.SKIPPED


async def test_notifier_failure_does_not_hide_the_outcome() -> None:
    target = FakeTarget()
    d, ledger, notify, _ = make(target)
    notify.fail = True
    out = await d.handle(decision())
    assert out is not None
    assert out.status == OutcomeStatus.DONE
    assert ledger.of("shop/web/7")[-1]["status"] == "done"


def test_retry_policy_delay_bounds() -> None:
    p = RetryPolicy(attempts=10, initial_backoff=0.5, max_backoff=10.0, jitter=0.5)
    for attempt in range(1, 10):
        for u in (0.0, 0.5, 0.999):
            d = p.delay(attempt, u)
            base = min(10.0, 0.5 * 2 ** (attempt - 1))
            assert base * 0.5 <= d <= base <= 10.0
