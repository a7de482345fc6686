"""The policy's promises, stated as properties over arbitrary check sequences."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from config.detection import DetectionSettings
from detector.core import policy
from detector.core.policy import PolicyState
from detector.core.signals import Check, SignalState
from detector.core.types import Action, Decision, SignalKind, Verdict
from models.compare import CheckResult

STATUSES = st.sampled_from(["warming_up", "pass", "fail"])


def _feed(
    seq: list[tuple[str, bool]], failed_checks: int, kind: SignalKind = SignalKind.LATENCY
) -> list[tuple[int, Decision | None]]:
    sig = SignalState("s", kind, DetectionSettings(failed_checks=failed_checks), 360)
    pol = PolicyState(revision="r1")
    out: list[tuple[int, Decision | None]] = []
    streak = 0
    for i, (status, shared) in enumerate(seq):
        streak = streak + 1 if status == "fail" else 0
        sig.fails = streak
        result = CheckResult(
            20.0 if status == "fail" else 0.0, 12.0, status == "fail", 1.0, 1.0, 1.0
        )
        d = policy.on_check(pol, "svc", "ns", sig, Check(status, result, shared, float(i)))
        out.append((streak, d))
    return out


@settings(max_examples=300, deadline=None)
@given(
    seq=st.lists(st.tuples(STATUSES, st.booleans()), max_size=80),
    n=st.integers(min_value=1, max_value=6),
)
def test_never_rolls_back_with_fewer_than_n_failed_checks(
    seq: list[tuple[str, bool]], n: int
) -> None:
    for streak, d in _feed(seq, n):
        if d is not None and d.action is Action.ROLLBACK:
            assert streak >= n


@settings(max_examples=300, deadline=None)
@given(seq=st.lists(st.tuples(STATUSES, st.booleans()), max_size=80))
def test_at_most_one_rollback_per_revision(seq: list[tuple[str, bool]]) -> None:
    decisions = [d for _, d in _feed(seq, 2) if d is not None]
    assert sum(d.action is Action.ROLLBACK for d in decisions) <= 1
    assert all(d.revision == "r1" for d in decisions)


@settings(max_examples=200, deadline=None)
@given(seq=st.lists(st.tuples(st.sampled_from(["pass", "warming_up"]), st.booleans()), max_size=80))
def test_shared_incidents_never_roll_back(seq: list[tuple[str, bool]]) -> None:
    decisions = [d for _, d in _feed(seq, 1) if d is not None]
    assert all(d.action is not Action.ROLLBACK for d in decisions)
    anomalies = [d for d in decisions if d.verdict is Verdict.ANOMALY]
    recovered = [d for d in decisions if d.verdict is Verdict.RECOVERED]
    # episodes open and close alternately
    assert len(anomalies) - len(recovered) in (0, 1)


@settings(max_examples=100, deadline=None)
@given(seq=st.lists(st.tuples(STATUSES, st.booleans()), max_size=60))
def test_gauges_never_roll_back(seq: list[tuple[str, bool]]) -> None:
    decisions = [d for _, d in _feed(seq, 1, SignalKind.GAUGE) if d is not None]
    assert all(d.action is not Action.ROLLBACK for d in decisions)
