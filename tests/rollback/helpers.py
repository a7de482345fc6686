"""Shared test helpers of the rollback tests: decisions, a recording notifier, a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from detector.core.types import Action, Decision, Severity, Verdict
from rollback.targets.base import ActionOutcome


def decision(
    service: str = "web",
    namespace: str = "shop",
    revision: str = "7",
    action: Action = Action.ROLLBACK,
    ts: float = 1000.0,
) -> Decision:
    return Decision(
        ts=ts,
        service=service,
        namespace=namespace,
        revision=revision,
        verdict=Verdict.REGRESSION,
        severity=Severity.ERROR,
        action=action,
        reason="latency_p99_seconds of the canary is 3.1x the baseline",
    )


@dataclass
class RecordingNotifier:
    """The ``notify`` callable of the dispatcher, recording what it was given."""

    calls: list[tuple[Decision, ActionOutcome | None]] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, decision: Decision, outcome: ActionOutcome | None) -> None:
        self.calls.append((decision, outcome))
        if self.fail:
            raise RuntimeError("alert router down")


@dataclass
class FakeTime:
    """Wall clock and sleep for the dispatcher: sleeping advances the clock, instantly."""

    now: float = 10_000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def routed_alert(decision: Decision, outcome: ActionOutcome | None) -> tuple[Severity, str]:
    """Severity and title of the trigger alert the alert router plans for what the dispatcher
    passed to ``notify`` (the seam between the two: a failed outcome must page as critical)."""
    from rollback.sinks.base import AlertEvent
    from rollback.sinks.routing import Route, plan

    triggers = [
        a for _, a in plan(decision, outcome, [], Route(sinks=("pager",))).entries
        if a.event is AlertEvent.TRIGGER
    ]  # fmt: skip
    assert len(triggers) == 1, triggers
    return triggers[0].severity, triggers[0].summary
