"""The alert-sink seam: whatever tells people (PagerDuty, Alertmanager, the log).

Contract, checked for every implementation by ``tests/contract/test_alert_sinks.py``:

- ``send(alert)`` delivers one alert event or raises :class:`DeliveryFailed`. ``retryable`` says
  whether the same event may be sent again (429, 5xx, network errors) or never (400).
- Sending the same alert twice is harmless: ``alert.dedup_key`` is stable per
  (namespace, service, revision, verdict), so the receiver folds repeats into one incident.
- A sink never logs or raises a secret (routing keys, tokens).
- ``change`` events (a rollback was done, a canary recovered) are for timelines; a sink with no
  such notion accepts them and does nothing.
- Optional attributes the router looks for: ``resend_interval`` (seconds; open alerts are
  re-sent that often, for receivers that forget them) and ``async aclose()``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from detector.core.types import Decision, Severity
from rollback.targets.base import ActionOutcome, OutcomeStatus

MAX_DEDUP_KEY = 255  # PagerDuty's limit


class AlertEvent(StrEnum):
    TRIGGER = "trigger"
    RESOLVE = "resolve"
    CHANGE = "change"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert event about a rollout, with its evidence (the decision) and, when an action was
    attempted, its outcome."""

    event: AlertEvent
    decision: Decision
    severity: Severity
    summary: str
    outcome: ActionOutcome | None = None
    links: tuple[tuple[str, str], ...] = ()  # (text, href) pairs: dashboards, runbooks

    @property
    def dedup_key(self) -> str:
        d = self.decision
        verdict = "regression" if d.verdict.value == "recovered" else d.verdict.value
        key = f"canary-sentinel:{d.namespace}/{d.service}@{d.revision}:{verdict}"
        if len(key) > MAX_DEDUP_KEY:
            # still stable per rollout and verdict, just not readable in full
            digest = hashlib.sha256(key.encode()).hexdigest()[:32]
            key = f"{key[: MAX_DEDUP_KEY - 34]}#{digest}"
        return key

    @property
    def rollback_failed(self) -> bool:
        return self.outcome is not None and self.outcome.status is OutcomeStatus.FAILED

    def to_record(self) -> dict[str, Any]:
        """JSON-able form, kept in the delivery outbox."""
        return {
            "event": self.event.value,
            "decision": self.decision.to_record(),
            "severity": self.severity.value,
            "summary": self.summary,
            "outcome": self.outcome.to_record() if self.outcome is not None else None,
            "links": [list(link) for link in self.links],
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Alert:
        out = rec.get("outcome")
        return cls(
            event=AlertEvent(rec["event"]),
            decision=Decision.from_record(rec["decision"]),
            severity=Severity(rec["severity"]),
            summary=str(rec["summary"]),
            outcome=(
                ActionOutcome(
                    status=OutcomeStatus(out["status"]),
                    detail=str(out["detail"]),
                    requests=tuple(out.get("requests", ())),
                )
                if out is not None
                else None
            ),
            links=tuple((str(t), str(h)) for t, h in rec.get("links", ())),
        )


class DeliveryFailed(Exception):
    """The alert was not delivered. ``reason`` is safe to log (no secrets, no request body);
    ``retry_after`` is the receiver's hint in seconds, when it gave one."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class AlertSink(Protocol):
    """Delivers alerts. Implementations: ``pagerduty``, ``alertmanager``, ``log``, ``fake``."""

    type_name: str

    async def send(self, alert: Alert) -> None: ...
