"""``check-config``: validate a configuration and say what it means, in words an SRE reads.

Prints the effective detection settings of every signal at every level that changes them,
with each knob's meaning; secrets are reported as set / not set, never shown.
"""

from __future__ import annotations

from typing import IO, Any

from config.detection import DetectionSettings
from config.schema import DEFAULT_SIGNAL_KINDS, SentinelConfig
from detector.core.signals import derived, reported_quantile
from detector.core.types import SignalKind
from models.compare import alarm_threshold


def _line(
    s: DetectionSettings,
    interval: float,
    name: str | None = None,
    kind: SignalKind | None = None,
) -> str:
    """One level's effective settings; ``name`` and ``kind``: the signal's, when the line is
    one signal's (a latency signal's name says its quantile)."""
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
        + (_quantiles(s, name) if name is None or kind is SignalKind.LATENCY else "")
    )


def _quantiles(s: DetectionSettings, name: str | None) -> str:
    """How latency quantiles are read: from histogram buckets, as exact, or as they come;
    ``name``: the signal's, whose quantile the line then names."""
    if s.histogram_buckets:
        bounds = ", ".join(f"{b:g}" for b in s.histogram_buckets)
        text = f"; latency quantiles read from histogram buckets [{bounds}]"
    elif s.exact_quantiles:
        text = "; latency quantiles exact"
    elif name is None:
        return (
            "; latency quantiles taken as they come, a window of too few requests for its "
            "quantile clipped (set histogram_buckets or exact_quantiles to say how they are "
            "computed)"
        )
    else:
        return ""
    if name is None:
        return text
    q = reported_quantile(name, s)
    if s.histogram_buckets:
        if q is None:
            return text + " as a median (quantile unknown: set `quantile`)"
        return text + f" as the {q:g} quantile"
    if q is None:
        return text + " (quantile unknown, so no allowance for small canaries: set `quantile`)"
    if derived(name, SignalKind.LATENCY, s).tail_read > 0.0:
        return text + f" (the {q:g} quantile: a small canary's reading low is allowed for)"
    return text + f" (the {q:g} quantile: no allowance for small canaries)"


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
        eff = cfg.effective("", name)
        told = eff.histogram_buckets or eff.exact_quantiles
        if name in cfg.signals or (kind is SignalKind.LATENCY and told):
            w("    " + _line(eff, cfg.sample_interval_seconds, name, kind) + "\n")
    for svc, ss in sorted(cfg.services.items()):
        w(f"\nService {svc} (namespace {cfg.namespace_of(svc)}):\n")
        for name in sorted(set(names) | set(ss.signals)):
            eff = cfg.effective(svc, name)
            if eff != cfg.effective("", name):
                kind = cfg.kind_of(svc, name)
                w(f"  {name}: " + _line(eff, cfg.sample_interval_seconds, name, kind) + "\n")
    _rollback(cfg, out)
    _alerting(cfg, out)


def _target(t: object) -> str:
    kind = getattr(t, "type", "?")
    action = getattr(t, "action", "?")
    mode = getattr(t, "mode", "?")
    extra = ""
    if kind == "deployment":
        extra = f", a paused Deployment: {getattr(t, 'paused_deployment', '?')}"
    return f"{kind} {action} ({mode}{extra})"


def _rollback(cfg: SentinelConfig, out: IO[str]) -> None:
    import os

    rb = cfg.rollback
    g = rb.guardrails
    w = out.write
    w("\nRollback:\n")
    w(f"  default target: {_target(rb.target)}\n")
    for name, svc in sorted(cfg.services.items()):
        if svc.rollback is not None:
            w(f"  {name}: {_target(svc.rollback)}\n")
    k = rb.kube
    where = k.service_account_dir if k.mode == "in-cluster" else (k.kubeconfig or "$KUBECONFIG")
    w(f"  Kubernetes access: {k.mode} ({where})\n")
    w(
        f"  guardrails: one action per rollout revision; cooldown {g.cooldown_seconds:g} s and "
        f"at most {g.max_actions_per_hour} actions an hour per namespace\n"
    )
    switch = []
    if g.emergency_switch_file:
        state = "ON" if os.path.exists(g.emergency_switch_file) else "off"
        switch.append(f"file {g.emergency_switch_file} ({state})")
    if g.emergency_switch_env:
        value = os.environ.get(g.emergency_switch_env, "")
        state = "ON" if value.strip().lower() not in ("", "0", "false", "no", "off") else "off"
        switch.append(f"env {g.emergency_switch_env} ({state})")
    w(f"  emergency switch (every target dry-run): {', '.join(switch) or 'disabled'}\n")
    r = rb.retry
    w(
        f"  retries: {r.attempts} attempts, backoff {r.initial_backoff_seconds:g} s doubling to "
        f"{r.max_backoff_seconds:g} s; 403 and 404 are never retried\n"
    )


def _secret(name: str, source: Any) -> str:
    """``name set (where)``, or the problem with the secret (which names its source); never the
    secret itself."""
    status: str = source.status()
    return f"{name} {status}" if status.startswith("set") else status


def _sink_auth(sink: object) -> str:
    """How a sink authenticates, and whether its secret can be read."""
    basic = getattr(sink, "basic_auth", None)
    token = getattr(sink, "bearer_token", None)
    if basic is not None:
        return f" (basic auth {basic.username}, {_secret('password', basic.password)})"
    if token is not None:
        return f" ({_secret('bearer token', token)})"
    return ""


def _alerting(cfg: SentinelConfig, out: IO[str]) -> None:
    al = cfg.alerting
    w = out.write
    w(f"\nAlerting (least severity {al.min_severity.value}; outbox {al.outbox_path}):\n")
    for sink in al.sinks:
        line = f"  {sink.name} ({sink.type}, least severity {sink.min_severity.value})"
        key = getattr(sink, "routing_key", None)
        if key is not None:
            line += f": {_secret('routing key', key)}"
        url = getattr(sink, "url", None) or getattr(sink, "base_url", None)
        if url:
            line += f" -> {url}"
        w(line + _sink_auth(sink) + "\n")
    for name, svc in sorted(cfg.services.items()):
        sa = getattr(svc, "alerting", None)
        if sa is not None:
            sinks = ", ".join(sa.sinks) if sa.sinks is not None else "all sinks"
            w(f"  {name}: {sinks}\n")


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
