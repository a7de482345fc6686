"""The ``fake`` sink: records what it is sent and fails on command. For tests of the router and
of anything that alerts; it honours the sink contract (see ``base.py``). Also sample decisions
and outcomes to alert about (:func:`sample_decision`, :func:`sample_outcome`)."""

from __future__ import annotations

import asyncio
from collections import deque

from detector.core.types import Action, Decision, Severity, SignalEvidence, SignalKind, Verdict
from rollback.sinks.base import Alert, AlertEvent, DeliveryFailed
from rollback.targets.base import ActionOutcome, OutcomeStatus


class FakeSink:
    """``sent`` holds every alert delivered, in order; ``attempts`` every call, failed or not.

    ``fail(n, retryable=...)`` makes the next ``n`` calls raise :class:`DeliveryFailed`;
    ``block()`` makes calls wait until ``release()`` (a sink that hangs).
    """

    type_name = "fake"

    def __init__(self, name: str = "fake", *, resend_interval: float | None = None) -> None:
        self.name = name
        self.resend_interval = resend_interval
        self.sent: list[Alert] = []
        self.attempts: list[Alert] = []
        self._failures: deque[DeliveryFailed] = deque()
        self._gate = asyncio.Event()
        self._gate.set()
        self.called = asyncio.Event()  # set at every call
        self.delivered = asyncio.Event()  # set after every successful delivery

    def fail(self, n: int = 1, *, retryable: bool = True, reason: str = "scripted failure") -> None:
        for _ in range(n):
            self._failures.append(DeliveryFailed(reason, retryable=retryable))

    def block(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    @property
    def triggers(self) -> list[Alert]:
        return [a for a in self.sent if a.event is AlertEvent.TRIGGER]

    @property
    def resolves(self) -> list[Alert]:
        return [a for a in self.sent if a.event is AlertEvent.RESOLVE]

    @property
    def changes(self) -> list[Alert]:
        return [a for a in self.sent if a.event is AlertEvent.CHANGE]

    async def send(self, alert: Alert) -> None:
        self.attempts.append(alert)
        self.called.set()
        await self._gate.wait()
        if self._failures:
            raise self._failures.popleft()
        self.sent.append(alert)
        self.delivered.set()


def sample_decision(
    *,
    service: str = "checkout",
    namespace: str = "shop",
    revision: str = "7f9c2d1",
    verdict: Verdict = Verdict.REGRESSION,
    severity: Severity = Severity.CRITICAL,
    action: Action = Action.ROLLBACK,
    ts: float = 1_790_000_000.0,
    reason: str | None = None,
    signals: tuple[SignalEvidence, ...] | None = None,
) -> Decision:
    """A realistic decision for tests of anything that alerts (p99 latency doubled)."""
    if signals is None:
        signals = (
            SignalEvidence(
                signal="latency_p99_seconds",
                kind=SignalKind.LATENCY,
                canary=0.412,
                baseline=0.201,
                effect=2.05,
                score=9.21,
                threshold=6.91,
                status="fail",
            ),
        )
        if verdict in (Verdict.RECOVERED, Verdict.NO_DATA):
            signals = ()
    return Decision(
        ts=ts,
        service=service,
        namespace=namespace,
        revision=revision,
        verdict=verdict,
        severity=severity,
        action=action,
        reason=reason or f"{service} canary {verdict.value} (test decision).",
        signals=signals,
    )


def sample_outcome(status: OutcomeStatus = OutcomeStatus.DONE, detail: str = "") -> ActionOutcome:
    """The outcome of a rollback action on the sample decision's rollout."""
    return ActionOutcome(
        status=status,
        detail=detail or f"abort Rollout shop/checkout: {status.value}",
        requests=(
            {
                "method": "PATCH",
                "path": "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/checkout/status",
                "content_type": "application/merge-patch+json",
                "body": {"status": {"abort": True}},
            },
        ),
    )


class FakeTime:
    """A clock that moves only when slept on, for the router's ``clock=`` and ``sleep=``.

    ``sleeps`` records every requested delay. After ``block_after`` sleeps, ``sleep`` parks
    forever (and sets ``parked``), so a sink that stays down does not spin a test's event loop.
    """

    def __init__(self, start: float = 1_790_000_000.0, block_after: int | None = None) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.block_after = block_after
        self.parked = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self.block_after is not None and len(self.sleeps) >= self.block_after:
            self.parked.set()
            await asyncio.Event().wait()
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
