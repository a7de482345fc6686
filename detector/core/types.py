"""Value types of the decision core: what flows from decoding to the policy and out again.

Everything here is immutable, cheap to build on the hot path (``slots``), and free of I/O, so the
faust agents and ``replay`` build exactly the same values from the same records. The JSON shape of
a :class:`Decision` is the decision record of DESIGN.md (``to_record``/``from_record``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """Which side of the comparison a sample belongs to."""

    CANARY = "canary"
    BASELINE = "baseline"


class SignalKind(StrEnum):
    """What a signal measures, and therefore which direction is bad.

    ``latency``, ``error_rate`` and ``saturation``: higher is worse. ``throughput``: lower is
    worse. ``gauge``: no direction is worse; a gauge can raise an anomaly alert, never a rollback.
    """

    LATENCY = "latency"
    ERROR_RATE = "error_rate"
    THROUGHPUT = "throughput"
    SATURATION = "saturation"
    GAUGE = "gauge"


class Verdict(StrEnum):
    REGRESSION = "regression"
    ANOMALY = "anomaly"
    NO_DATA = "no_data"
    RECOVERED = "recovered"


class Severity(StrEnum):
    """The four PagerDuty severities, most severe first."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical up to 3 for info: lower is more severe."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.ERROR: 1, Severity.WARNING: 2, Severity.INFO: 3}


class Action(StrEnum):
    ROLLBACK = "rollback"
    ALERT = "alert"
    NONE = "none"


@dataclass(slots=True)
class Sample:
    """One decoded metric sample (DESIGN.md, topic ``sentinel.metrics``). Treat as immutable
    (not ``frozen`` only because a frozen dataclass costs five times as much to build, and one is
    built per record).

    ``kind`` is ``None`` when the record did not say; the engine then takes it from config by
    signal name. ``count`` is the number of observations behind ``value`` (requests in the
    window), ``None`` when unknown.
    """

    ts: float
    service: str
    namespace: str
    role: Role
    signal: str
    value: float
    kind: SignalKind | None = None
    count: int | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class LogRecord:
    """One decoded log record (DESIGN.md, topic ``sentinel.logs``). Treat as immutable."""

    ts: float
    service: str
    namespace: str
    role: Role
    level: str
    message: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SignalEvidence:
    """Why one signal failed: the figures a person needs to trust (or doubt) the verdict.

    ``canary`` and ``baseline`` are the compared figures in the signal's unit (mean latency,
    error ratio, throughput share); ``effect`` is the canary/baseline ratio (or the difference for
    ratios of errors); ``score`` is the test statistic (log e-value of the sequential test, or the
    anomaly z-score) and ``threshold`` the value it had to reach.
    """

    signal: str
    kind: SignalKind
    canary: float | None
    baseline: float | None
    effect: float | None
    score: float
    threshold: float
    status: str

    def to_record(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "kind": self.kind.value,
            "canary": _round(self.canary),
            "baseline": _round(self.baseline),
            "effect": _round(self.effect),
            "score": _round(self.score),
            "threshold": _round(self.threshold),
            "status": self.status,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> SignalEvidence:
        return cls(
            signal=str(rec["signal"]),
            kind=SignalKind(rec["kind"]),
            canary=rec.get("canary"),
            baseline=rec.get("baseline"),
            effect=rec.get("effect"),
            score=float(rec["score"]),
            threshold=float(rec["threshold"]),
            status=str(rec["status"]),
        )


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided about one rollout, and why (the decision record of DESIGN.md).

    ``revision`` identifies the rollout revision the decision is about (the ``revision`` label of
    the canary's samples, or ``"unknown"``); at most one ``rollback`` decision is made per
    (namespace, service, revision). ``decided_at`` is wall-clock time, set only by the live
    service, never by the pure core or by ``replay``. ``recovers`` says, on a ``recovered``
    decision, which verdict's episode ended (``anomaly`` or ``no_data``); ``None`` means the
    rollout was replaced and everything about this revision is over.
    """

    ts: float
    service: str
    namespace: str
    revision: str
    verdict: Verdict
    severity: Severity
    action: Action
    reason: str
    signals: tuple[SignalEvidence, ...] = ()
    decided_at: float | None = None
    recovers: Verdict | None = None

    @property
    def rollout_key(self) -> str:
        """``namespace/service/revision``: the key of the rollout in the decision ledger."""
        return f"{self.namespace}/{self.service}/{self.revision}"

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "ts": self.ts,
            "service": self.service,
            "namespace": self.namespace,
            "revision": self.revision,
            "signals": [s.to_record() for s in self.signals],
            "verdict": self.verdict.value,
            "severity": self.severity.value,
            "action": self.action.value,
            "reason": self.reason,
        }
        if self.recovers is not None:
            rec["recovers"] = self.recovers.value
        if self.decided_at is not None:
            rec["decided_at"] = self.decided_at
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Decision:
        return cls(
            ts=float(rec["ts"]),
            service=str(rec["service"]),
            namespace=str(rec["namespace"]),
            revision=str(rec.get("revision", "unknown")),
            verdict=Verdict(rec["verdict"]),
            severity=Severity(rec["severity"]),
            action=Action(rec["action"]),
            reason=str(rec["reason"]),
            signals=tuple(SignalEvidence.from_record(s) for s in rec.get("signals", [])),
            decided_at=rec.get("decided_at"),
            recovers=Verdict(rec["recovers"]) if rec.get("recovers") else None,
        )
