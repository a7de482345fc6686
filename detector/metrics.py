"""The service's own Prometheus metrics (served on ``/metrics``).

Each :class:`ServiceMetrics` owns a registry, so tests and several apps in one process never
collide on metric names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records = Counter(
            "canary_sentinel_records_total",
            "Records folded into the models.",
            ["topic"],
            registry=r,
        )
        self.skipped = Counter(
            "canary_sentinel_records_skipped_total",
            "Records delivered again after a restart and skipped: their checkpoint has them.",
            registry=r,
        )
        self.misrouted = Counter(
            "canary_sentinel_misrouted_records_total",
            "Records of a service that arrived on another partition than its earlier records: "
            "their producer does not key them by service.",
            registry=r,
        )
        self.bad_records = Counter(
            "canary_sentinel_bad_records_total",
            "Records that could not be decoded (sent to the dead-letter topic), by fault.",
            ["kind"],
            registry=r,
        )
        self.decisions = Counter(
            "canary_sentinel_decisions_total",
            "Decisions made, by verdict and action.",
            ["verdict", "action"],
            registry=r,
        )
        self.checkpoints = Counter(
            "canary_sentinel_checkpoints_total", "State checkpoints written.", registry=r
        )
        self.late = Gauge(
            "canary_sentinel_late_records", "Records dropped for arriving too late.", registry=r
        )
        self.services = Gauge(
            "canary_sentinel_services", "Services whose state this worker holds.", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
