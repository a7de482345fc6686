"""What the router reports about its sinks: Prometheus metrics and the health record.

Used by :class:`rollback.alerting.AlertRouter`. Metric names (labels never carry a secret):
``canary_sentinel_alert_deliveries_total{sink,result}`` (result: delivered, rejected, retried),
``canary_sentinel_alert_sink_up{sink}``, ``canary_sentinel_alert_outbox_pending{sink}``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge


class AlertMetrics:
    """The router's Prometheus metrics; one set per registry, shared by every router on it (so
    building several routers in one process never registers a name twice)."""

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, AlertMetrics] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "canary_sentinel_alert_deliveries",
            "Alert delivery attempts by sink and result (delivered, rejected, retried).",
            ["sink", "result"],
            registry=registry,
        )
        self.sink_up = Gauge(
            "canary_sentinel_alert_sink_up",
            "1 when the sink's last delivery attempt succeeded (or none failed yet), else 0.",
            ["sink"],
            registry=registry,
        )
        self.pending = Gauge(
            "canary_sentinel_alert_outbox_pending",
            "Alerts in the outbox waiting for delivery, by sink.",
            ["sink"],
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> AlertMetrics:
        if registry not in cls._by_registry:
            cls._by_registry[registry] = cls(registry)
        return cls._by_registry[registry]


@dataclass
class SinkHealth:
    type: str
    up: bool = True
    pending: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_success_at: float | None = None
    last_attempt_at: float | None = None
    delivered: int = 0
    rejected: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "up": self.up,
            "pending": self.pending,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "last_success_at": self.last_success_at,
            "last_attempt_at": self.last_attempt_at,
            "delivered": self.delivered,
            "rejected": self.rejected,
        }
