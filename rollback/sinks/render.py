"""What alerts say: the 3 a.m. sentence, the evidence, the names Alertmanager routes on.

Pure functions of a :class:`~detector.core.types.Decision` and its
:class:`~rollback.targets.base.ActionOutcome`, shared by the router (which writes
``Alert.summary``) and the sinks (which lay the same evidence out in their own formats), so the
PagerDuty incident and the Alertmanager alert tell the same story.
"""

from __future__ import annotations

from typing import Any

from detector.core.types import Action, Decision, SignalEvidence, SignalKind, Verdict
from rollback.sinks.base import Alert
from rollback.targets.base import ActionOutcome, OutcomeStatus

MAX_SUMMARY = 1024  # PagerDuty's payload.summary limit
MAX_SIGNALS_IN_DETAILS = 20  # keeps custom_details small, whatever the decision carries


def clip(text: str, limit: int = MAX_SUMMARY) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def rollout_name(d: Decision) -> str:
    return f"{d.service} ({d.namespace}, revision {d.revision})"


def fmt_value(kind: SignalKind, v: float | None) -> str:
    """A figure in the unit people read: ms for latency, percent for error rates."""
    if v is None:
        return "n/a"
    if kind is SignalKind.LATENCY:
        return f"{v * 1000:.0f} ms" if abs(v) < 10 else f"{v:.1f} s"
    if kind is SignalKind.ERROR_RATE:
        return f"{v * 100:.2f}%"
    return f"{v:.4g}"


def change_pct(s: SignalEvidence) -> float | None:
    if s.canary is None or s.baseline is None or s.baseline == 0:
        return None
    return (s.canary - s.baseline) / abs(s.baseline) * 100.0


def describe_signal(s: SignalEvidence, *, score: bool = True) -> str:
    """``latency_p99_seconds: canary 412 ms vs baseline 201 ms (+105%; score 9.2 >= 4.6)``."""
    pct = change_pct(s)
    parts = [f"{pct:+.0f}%"] if pct is not None else []
    if score:
        parts.append(f"score {s.score:.3g} >= {s.threshold:.3g}")
    extra = f" ({'; '.join(parts)})" if parts else ""
    return (
        f"{s.signal}: canary {fmt_value(s.kind, s.canary)} vs baseline "
        f"{fmt_value(s.kind, s.baseline)}{extra}"
    )


def action_text(d: Decision, outcome: ActionOutcome | None) -> str:
    """What the service did about it, in words."""
    if outcome is not None:
        words = {
            OutcomeStatus.DONE: "rollback done",
            OutcomeStatus.DRY_RUN: "dry run, nothing changed",
            OutcomeStatus.FAILED: "ROLLBACK FAILED",
            OutcomeStatus.SKIPPED: "rollback skipped",
        }[outcome.status]
        return f"{words}: {outcome.detail}" if outcome.detail else words
    if d.action is Action.ROLLBACK:
        return "rollback requested"
    if d.action is Action.ALERT:
        return "alert only, no rollback"
    return "no action"


def alertname(alert: Alert) -> str:
    """The Alertmanager ``alertname``: one per kind of problem, CamelCase."""
    if alert.rollback_failed:
        return "CanaryRollbackFailed"
    return {
        Verdict.REGRESSION: "CanaryRegression",
        Verdict.ANOMALY: "CanaryAnomaly",
        Verdict.NO_DATA: "CanaryNoData",
        Verdict.RECOVERED: "CanaryRegression",
    }[alert.decision.verdict]


def trigger_summary(d: Decision, outcome: ActionOutcome | None) -> str:
    """The alert title: service, what is wrong with which figures, and what was done."""
    first = describe_signal(d.signals[0], score=False) if d.signals else d.reason.rstrip(". ")
    more = f" (+{len(d.signals) - 1} more signals)" if len(d.signals) > 1 else ""
    what = {
        Verdict.REGRESSION: "the canary regressed",
        Verdict.ANOMALY: "anomaly on canary and baseline alike (not the release)",
        Verdict.NO_DATA: "no data from the canary",
        Verdict.RECOVERED: "the canary recovered",
    }[d.verdict]
    act = action_text(d, outcome)
    if outcome is not None and outcome.status is OutcomeStatus.FAILED:
        text = (
            f"ROLLBACK FAILED, act now: {rollout_name(d)}: {what}: {first}{more}. "
            f"The rollback failed: {outcome.detail.rstrip('. ')}."
        )
    else:
        text = f"{rollout_name(d)}: {what}: {first}{more}. Action: {act.rstrip('. ')}."
    return clip(text)


def resolve_summary(d: Decision, why: str) -> str:
    return clip(f"Resolved: {rollout_name(d)}: {why}")


def change_summary(d: Decision, outcome: ActionOutcome | None) -> str:
    if outcome is None:
        return clip(f"canary-sentinel: {rollout_name(d)} canary recovered: {d.reason}")
    return clip(f"canary-sentinel: {rollout_name(d)}: {action_text(d, outcome)}")


def evidence(alert: Alert) -> dict[str, Any]:
    """``custom_details`` / annotations: the figures behind the verdict and the action taken."""
    d = alert.decision
    details: dict[str, Any] = {
        "service": d.service,
        "namespace": d.namespace,
        "revision": d.revision,
        "verdict": d.verdict.value,
        "severity": alert.severity.value,
        "reason": d.reason,
        "event_time": d.ts,
        "signals": [
            {
                "signal": s.signal,
                "kind": s.kind.value,
                "canary": s.canary,
                "baseline": s.baseline,
                "change_pct": None if (p := change_pct(s)) is None else round(p, 2),
                "effect": s.effect,
                "score": s.score,
                "threshold": s.threshold,
                "status": s.status,
            }
            for s in d.signals[:MAX_SIGNALS_IN_DETAILS]
        ],
        "action": d.action.value,
        "action_taken": action_text(d, alert.outcome),
    }
    if len(d.signals) > MAX_SIGNALS_IN_DETAILS:
        details["signals_omitted"] = len(d.signals) - MAX_SIGNALS_IN_DETAILS
    if d.decided_at is not None:
        details["decided_at"] = d.decided_at
    if alert.outcome is not None:
        details["outcome"] = {
            "status": alert.outcome.status.value,
            "detail": alert.outcome.detail,
            # method and path only: bodies belong in the decision ledger, not in a page
            "requests": [
                f"{r.get('method', '?')} {r.get('path', '?')}" for r in alert.outcome.requests
            ][:10],
        }
    return details
