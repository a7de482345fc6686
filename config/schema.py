"""The typed configuration of canary-sentinel (the YAML that SREs edit).

Loaded by :mod:`config.loader`; every field carries a description that ``check-config`` prints.
Unknown keys are errors (``extra="forbid"``), so a typo is refused at start instead of silently
ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.alerting import AlertingSettings, ServiceAlertingSettings
from config.detection import DetectionOverride, DetectionSettings
from config.rollback import RollbackSettings, RollbackTargetSettings
from detector.core.types import SignalKind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_SIGNAL_KINDS: dict[str, SignalKind] = {
    "latency_p50_seconds": SignalKind.LATENCY,
    "latency_p90_seconds": SignalKind.LATENCY,
    "latency_p95_seconds": SignalKind.LATENCY,
    "latency_p99_seconds": SignalKind.LATENCY,
    "error_rate": SignalKind.ERROR_RATE,
    "requests_per_second": SignalKind.THROUGHPUT,
    "cpu_utilization": SignalKind.SATURATION,
    "log_error_rate": SignalKind.ERROR_RATE,
    "log_new_template_rate": SignalKind.ERROR_RATE,
}


# Built-in per-signal defaults, applied under the user's own overrides.
DEFAULT_SIGNAL_OVERRIDES: dict[str, DetectionOverride] = {
    "log_new_template_rate": DetectionOverride(action="alert"),
    # a canary's share of traffic wobbles with load balancing; act on real losses only
    "requests_per_second": DetectionOverride(min_effect_pct=25.0),
}


class KafkaSettings(_Strict):
    """Where the service reads and writes."""

    broker: str = Field(
        "kafka://127.0.0.1:9092",
        description="Bootstrap servers as faust URLs, `;`-separated (kafka://host:port).",
    )
    app_id: str = Field(
        "canary-sentinel",
        description="faust app id: the consumer group and the prefix of table changelog topics.",
    )
    metrics_topic: str = Field("sentinel.metrics", description="Topic of metric samples.")
    logs_topic: str = Field("sentinel.logs", description="Topic of log records.")
    decisions_topic: str = Field(
        "sentinel.decisions", description="Audit ledger of decisions and actions (compacted)."
    )
    deadletter_topic: str = Field(
        "sentinel.deadletter", description="Where records that cannot be decoded go, with reason."
    )
    metrics_format: Literal["native", "prometheus-adapter", "otlp-json"] = Field(
        "native",
        description=(
            "Record format of the metrics topic: `native` (DESIGN.md), `prometheus-adapter` "
            "(prometheus-kafka-adapter JSON), `otlp-json` (OpenTelemetry Collector Kafka exporter)."
        ),
    )
    partitions: int = Field(
        8,
        ge=1,
        description="Partitions of the source topics and changelogs: the most workers you can run.",
    )
    store: str = Field(
        "memory://",
        description="faust table store: `rocksdb://` in production (needs the rocksdict extra).",
    )
    checkpoint_every_samples: int = Field(
        2000,
        ge=1,
        description="Write model state to the changelog after this many samples on a partition.",
    )
    checkpoint_every_seconds: float = Field(
        1.0, gt=0, description="... or after this many wall-clock seconds, whichever comes first."
    )
    session_timeout_seconds: float = Field(
        60.0,
        ge=6.0,
        le=300.0,
        description=(
            "How long the broker waits for a silent worker before handing its partitions to "
            "another (Kafka's session.timeout.ms). A killed worker's partitions stay idle this "
            "long; shorter means faster failover but more rebalances on a slow network. The "
            "broker refuses values outside its group.min/max.session.timeout.ms (6 s .. 30 min "
            "by default)."
        ),
    )
    max_record_bytes: int = Field(
        65536,
        ge=256,
        description="Messages (a record or a batch) larger than this go to the dead-letter topic.",
    )
    web_port: int = Field(
        6066, ge=0, le=65535, description="Port of /metrics and /health (0 picks a free one)."
    )
    data_dir: str | None = Field(
        None,
        description=(
            "Where the worker keeps local table data (RocksDB files); default `<app_id>-data` "
            "in the working directory."
        ),
    )
    web_bind: str = Field(
        "0.0.0.0", description="Address /metrics and /health listen on (127.0.0.1: local only)."
    )


class SignalSettings(DetectionOverride):
    """Per-signal overrides (inherits every detection knob, plus the signal's kind)."""


class ServiceSettings(_Strict):
    """What is special about one service (a Rollout or Deployment name)."""

    namespace: str | None = Field(None, description="Kubernetes namespace; default: `namespace`.")
    detection: DetectionOverride = Field(
        default_factory=DetectionOverride, description="Overrides of `detection` for this service."
    )
    signals: dict[str, SignalSettings] = Field(
        default_factory=dict, description="Per-signal overrides for this service."
    )
    rollback: RollbackTargetSettings | None = Field(
        None, description="This service's rollback target; default: `rollback.target`."
    )
    alerting: ServiceAlertingSettings | None = Field(
        None, description="This service's alert routing; default: `alerting`."
    )


class SentinelConfig(_Strict):
    """The root of the YAML file."""

    namespace: str = Field(
        "default", description="Namespace of records that name none, and of services by default."
    )
    allowed_lateness_seconds: float = Field(
        30.0,
        ge=0,
        description=(
            "How late (event time, behind the newest sample of the same service) a sample may "
            "arrive and still be used; later ones are counted and dropped."
        ),
    )
    sample_interval_seconds: float = Field(
        10.0,
        gt=0,
        description="Expected spacing of samples; canary and baseline are paired per interval.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description="Kafka settings.")
    detection: DetectionSettings = Field(
        default_factory=DetectionSettings, description="Global detection settings."
    )
    signals: dict[str, SignalSettings] = Field(
        default_factory=dict, description="Per-signal overrides for every service."
    )
    services: dict[str, ServiceSettings] = Field(
        default_factory=dict, description="Per-service overrides, keyed by service name."
    )
    rollback: RollbackSettings = Field(
        default_factory=RollbackSettings, description="Rollback targets and guardrails."
    )
    alerting: AlertingSettings = Field(default_factory=AlertingSettings, description="Alert sinks.")

    @model_validator(mode="after")
    def _names(self) -> SentinelConfig:
        for name in self.services:
            if not name or "/" in name:
                raise ValueError(f"services: {name!r} is not a valid service name")
        problems = self.alerting.check_services(dict(self.services))
        if problems:
            raise ValueError("; ".join(f"{path}: {msg}" for path, msg in problems))
        return self

    def effective(self, service: str, signal: str) -> DetectionSettings:
        """The detection settings that apply to one signal of one service."""
        eff = self.detection
        if (builtin := DEFAULT_SIGNAL_OVERRIDES.get(signal)) is not None:
            eff = builtin.apply(eff)
        svc = self.services.get(service)
        glob_sig = self.signals.get(signal)
        if glob_sig is not None:
            eff = glob_sig.apply(eff)
        if svc is not None:
            eff = svc.detection.apply(eff)
            svc_sig = svc.signals.get(signal)
            if svc_sig is not None:
                eff = svc_sig.apply(eff)
        return eff

    def kind_of(self, service: str, signal: str) -> SignalKind | None:
        """The configured kind of a signal, or ``None`` when neither config nor the defaults
        name it."""
        svc = self.services.get(service)
        if svc is not None and (s := svc.signals.get(signal)) is not None and s.kind is not None:
            return s.kind
        if (g := self.signals.get(signal)) is not None and g.kind is not None:
            return g.kind
        return DEFAULT_SIGNAL_KINDS.get(signal)

    def namespace_of(self, service: str) -> str:
        svc = self.services.get(service)
        return svc.namespace if svc is not None and svc.namespace else self.namespace
