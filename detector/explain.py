"""``check-config``: validate a configuration and say what it means, in words an SRE reads.

Prints the effective detection settings of every signal at every level that changes them,
with each knob's meaning; secrets are reported as set / not set, never shown.
"""

from __future__ import annotations

from typing import IO

from config.detection import DetectionSettings
from config.schema import DEFAULT_SIGNAL_KINDS, SentinelConfig
from models.compare import alarm_threshold


def _line(s: DetectionSettings, interval: float) -> str:
    horizon = int(s.rollout_duration_seconds / interval) + 1
    h = alarm_threshold(s.false_positive_budget, horizon)
    effect = f"+{s.min_effect_pct:g}%"
    if s.min_effect_abs:
        effect += f" and +{s.min_effect_abs:g} absolute"
    return (
        f"action on regression: {s.action}; false-positive budget {s.false_positive_budget:g} "
        f"per rollout of {s.rollout_duration_seconds / 60:g} min (evidence threshold {h:.1f}); "
        f"minimum effect {effect}; {s.failed_checks} failed checks in a row; warm-up "
        f"{s.warmup_samples} paired samples; full weight from {s.min_count} requests; no data "
        f"after {s.no_data_after_seconds:g} s; shared-incident z {s.anomaly_z:g}"
    )


def explain(cfg: SentinelConfig, out: IO[str]) -> None:
    k = cfg.kafka
    w = out.write
    w("Configuration is valid.\n\n")
    w(f"Kafka: {k.broker}  app id {k.app_id!r}, {k.partitions} partitions, store {k.store}\n")
    w(
        f"  reads {k.metrics_topic} ({k.metrics_format}) and {k.logs_topic}; writes "
        f"{k.decisions_topic}, dead letters to {k.deadletter_topic}\n"
    )
    w(
        f"  checkpoint every {k.checkpoint_every_samples} records or "
        f"{k.checkpoint_every_seconds:g} s; records over {k.max_record_bytes} bytes rejected\n\n"
    )
    w(
        f"Event time: samples paired per {cfg.sample_interval_seconds:g} s; records more than "
        f"{cfg.allowed_lateness_seconds:g} s late are dropped. Default namespace "
        f"{cfg.namespace!r}.\n\n"
    )
    w(
        "Detection (all services, all signals):\n  "
        + _line(cfg.detection, cfg.sample_interval_seconds)
        + "\n"
    )
    names = sorted(set(DEFAULT_SIGNAL_KINDS) | set(cfg.signals))
    w("\nSignals (kind decides which direction is bad):\n")
    for name in names:
        kind = cfg.kind_of("", name)
        w(f"  {name}: {kind.value if kind else 'gauge (unknown: never rolls back)'}\n")
        if name in cfg.signals:
            w("    " + _line(cfg.effective("", name), cfg.sample_interval_seconds) + "\n")
    for svc, ss in sorted(cfg.services.items()):
        w(f"\nService {svc} (namespace {cfg.namespace_of(svc)}):\n")
        target = ss.rollback or cfg.rollback.target
        w(f"  rollback target: {target.model_dump(mode='json')}\n")
        for name in sorted(set(names) | set(ss.signals)):
            eff = cfg.effective(svc, name)
            if eff != cfg.effective("", name):
                w(f"  {name}: " + _line(eff, cfg.sample_interval_seconds) + "\n")
    w(f"\nRollback: {cfg.rollback.model_dump(mode='json')}\n")
    w(f"Alerting: {cfg.alerting.model_dump(mode='json')}\n")


def describe_fields(out: IO[str]) -> None:
    """Every field of the schema with its description (``check-config --fields``)."""
    from pydantic import BaseModel

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, f in model.model_fields.items():
            out.write(f"{prefix}{name}: {f.description or ''}\n")
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, prefix + name + ".")

    walk(SentinelConfig, "")
