"""The policy: turns per-signal checks into decisions (rollback, alert, none).

Who calls this: the engine, after each check and at most once per sample interval of event time.
What it promises (property-tested in ``tests/unit/test_policy_properties.py``):

- never a rollback with fewer than ``failed_checks`` consecutive failed checks of one signal;
- at most one rollback decision per rollout revision;
- no data is its own state: it alerts once per episode and never rolls back;
- a shared incident (both sides anomalous for their own history, the comparison passing)
  alerts once per episode and never rolls back;
- decisions are made on transitions only, so the decision topic carries events, not a heartbeat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from detector.core.signals import Check, SignalState
from detector.core.types import Action, Decision, Severity, SignalEvidence, SignalKind, Verdict

_SHARED_STREAK = 2  # consecutive shared-anomaly checks before calling it an incident
_SHARED_CLEAR = 3  # consecutive calm checks before the incident is over
_NEVER = float("-inf")  # a side's last-seen time before it first reports


@dataclass(slots=True)
class PolicyState:
    """What the policy remembers about the current revision of one service."""

    revision: str = "unknown"
    revision_since: float = float("-inf")
    rolled_back: bool = False
    alerted: bool = False
    anomaly_open: bool = False
    shared_streak: dict[str, int] = field(default_factory=dict)
    calm_streak: int = 0
    no_data: set[str] = field(default_factory=set)


def _fmt(kind: SignalKind, v: float | None) -> str:
    if v is None:
        return "n/a"
    if kind is SignalKind.LATENCY:
        return f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"
    if kind is SignalKind.ERROR_RATE:
        return f"{v * 100:.2f}%"
    return f"{v:.3g}"


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def evidence(sig: SignalState, check: Check, status: str) -> SignalEvidence:
    r = check.result
    if sig.kind is SignalKind.ERROR_RATE:
        canary, baseline, effect = r.canary, r.baseline, r.effect
    else:
        # the test works on log-ratios; show the levels people know
        canary, baseline = sig.levels[0], sig.levels[1]
        effect = r.effect if sig.kind is SignalKind.THROUGHPUT else _ratio(canary, baseline)
    return SignalEvidence(
        signal=sig.name,
        kind=sig.kind,
        canary=canary,
        baseline=baseline,
        effect=effect if effect == effect and effect not in (float("inf"),) else None,
        score=r.score,
        threshold=r.threshold,
        status=status,
    )


def _regression_reason(service: str, sig: SignalState, check: Check, action: Action) -> str:
    r = check.result
    if sig.kind is SignalKind.ERROR_RATE:
        what = f"error rate {_fmt(sig.kind, r.canary)} vs baseline {_fmt(sig.kind, r.baseline)}"
    elif sig.kind is SignalKind.THROUGHPUT:
        what = f"throughput at {r.effect:.2f}x of its expected share"
    else:
        what = (
            f"{_fmt(sig.kind, sig.levels[0])} vs baseline {_fmt(sig.kind, sig.levels[1])} "
            f"({_ratio(sig.levels[0], sig.levels[1]):.2f}x)"
        )
    doing = {Action.ROLLBACK: "rolling back", Action.ALERT: "alerting", Action.NONE: "no action"}
    return (
        f"{service} canary {sig.name} regressed: {what} "
        f"({sig.fails} failed checks, evidence {r.score:.1f} >= {r.threshold:.1f}); "
        f"{doing[action]}."
    )


def _decision(
    ts: float,
    service: str,
    namespace: str,
    st: PolicyState,
    verdict: Verdict,
    severity: Severity,
    action: Action,
    reason: str,
    signals: tuple[SignalEvidence, ...] = (),
    recovers: Verdict | None = None,
) -> Decision:
    return Decision(
        ts=ts,
        service=service,
        namespace=namespace,
        revision=st.revision,
        verdict=verdict,
        severity=severity,
        action=action,
        reason=reason,
        signals=signals,
        recovers=recovers,
    )


def _recovered(
    ts: float,
    service: str,
    namespace: str,
    st: PolicyState,
    reason: str,
    recovers: Verdict | None,
) -> Decision:
    """An episode ended (``recovers``; ``None``: the rollout was replaced, all of them)."""
    return _decision(
        ts,
        service,
        namespace,
        st,
        Verdict.RECOVERED,
        Severity.INFO,
        Action.NONE,
        reason,
        recovers=recovers,
    )


def on_check(
    st: PolicyState, service: str, namespace: str, sig: SignalState, check: Check
) -> Decision | None:
    """Decide after one check of one signal."""
    if check.status == "fail" and sig.kind is not SignalKind.GAUGE:
        if sig.fails >= sig.settings.failed_checks and not st.rolled_back:
            action = Action(sig.settings.action)
            rollback = action is Action.ROLLBACK
            if rollback or not st.alerted:
                if rollback:
                    st.rolled_back = True
                else:
                    st.alerted = True
                return _decision(
                    check.ts,
                    service,
                    namespace,
                    st,
                    Verdict.REGRESSION,
                    Severity.CRITICAL if rollback else Severity.ERROR,
                    action,
                    _regression_reason(service, sig, check, action),
                    (evidence(sig, check, "fail"),),
                )
        return None
    return _shared_incident(st, service, namespace, sig, check)


def _shared_incident(
    st: PolicyState, service: str, namespace: str, sig: SignalState, check: Check
) -> Decision | None:
    streak = st.shared_streak.get(sig.name, 0) + 1 if check.shared_anomaly else 0
    st.shared_streak[sig.name] = streak
    if streak >= _SHARED_STREAK and not st.anomaly_open and not st.rolled_back:
        st.anomaly_open = True
        st.calm_streak = 0
        return _decision(
            check.ts,
            service,
            namespace,
            st,
            Verdict.ANOMALY,
            Severity.WARNING,
            Action.ALERT,
            f"{service}: {sig.name} is anomalous on canary and baseline alike (a shared "
            "incident, not the release); not rolling back.",
            (evidence(sig, check, "anomaly"),),
        )
    if st.anomaly_open:
        st.calm_streak = 0 if any(st.shared_streak.values()) else st.calm_streak + 1
        if st.calm_streak >= _SHARED_CLEAR:
            st.anomaly_open = False
            return _recovered(
                check.ts,
                service,
                namespace,
                st,
                f"{service}: the shared incident is over; canary and baseline are back to normal.",
                Verdict.ANOMALY,
            )
    return None


def on_tick(
    st: PolicyState,
    service: str,
    namespace: str,
    signals: dict[str, SignalState],
    now: float,
    interval: float,
) -> list[Decision]:
    """Event-time housekeeping: no-data episodes start and end here."""
    out: list[Decision] = []
    for name, sig in signals.items():
        canary_seen, baseline_seen = sig.last_seen
        if canary_seen == _NEVER:
            continue  # this canary never reported the signal: nothing to miss
        silent = now - canary_seen >= sig.settings.no_data_after_seconds
        baseline_alive = now - baseline_seen <= 3 * interval
        if silent and baseline_alive and name not in st.no_data:
            st.no_data.add(name)
            out.append(
                _decision(
                    now,
                    service,
                    namespace,
                    st,
                    Verdict.NO_DATA,
                    Severity.WARNING,
                    Action.ALERT,
                    f"{service} canary has sent no {name} for "
                    f"{now - canary_seen:.0f} s while the baseline keeps reporting; holding "
                    "(no data never rolls back).",
                )
            )
        elif not silent and name in st.no_data:
            st.no_data.discard(name)
            if not st.no_data:
                out.append(
                    _recovered(
                        now,
                        service,
                        namespace,
                        st,
                        f"{service} canary is reporting {name} again.",
                        Verdict.NO_DATA,
                    )
                )
    return out


def replaced(st: PolicyState, service: str, namespace: str, ts: float) -> Decision | None:
    """The rollout moved to a new revision: close what the old one had open."""
    if st.rolled_back or st.alerted or st.anomaly_open:
        return _recovered(
            ts,
            service,
            namespace,
            st,
            f"{service} revision {st.revision} was replaced by a new rollout.",
            None,
        )
    return None
