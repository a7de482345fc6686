"""``type: prometheus-adapter``: the JSON that prometheus-kafka-adapter writes, one sample per
message::

    {"timestamp": "2026-11-27T10:15:00Z", "value": "0.231", "name": "latency_p99_seconds",
     "labels": {"__name__": "latency_p99_seconds", "service": "checkout", "role": "canary",
                "namespace": "shop"}}

The service, role and namespace come from labels (``service`` or ``app``; ``role`` or ``track``;
``namespace``); the signal is the metric name. The value is a string, as the adapter writes it.
"""

from __future__ import annotations

import math
from typing import Any

from detector.core.types import Sample
from detector.sources.base import DecodeError
from detector.sources.native import load_object, sample_from


def _first(labels: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if k in labels:
            return labels[k]
    return None


class PrometheusAdapterFormat:
    type_name = "prometheus-adapter"

    def __init__(self, default_namespace: str = "default", max_bytes: int = 65536) -> None:
        self.default_namespace = default_namespace
        self.max_bytes = max_bytes

    def decode(self, raw: bytes) -> list[Sample]:
        obj = load_object(raw, self.max_bytes)
        labels = obj.get("labels")
        if not isinstance(labels, dict):
            raise DecodeError("missing_field", "prometheus-adapter record needs a `labels` object")
        value = obj.get("value")
        try:
            v = float(value) if isinstance(value, str | int | float) else math.nan
        except ValueError:
            raise DecodeError("bad_value", f"`value` {str(value)[:40]!r} is not a number") from None
        if isinstance(value, bool) or not math.isfinite(v):
            raise DecodeError("non_finite", "`value` must be a finite number")
        native = {
            "ts": obj.get("timestamp"),
            "service": _first(labels, "service", "app", "rollout"),
            "namespace": labels.get("namespace"),
            "role": _first(labels, "role", "track"),
            "signal": obj.get("name") or labels.get("__name__"),
            "value": v,
            "labels": {k: str(x) for k, x in labels.items() if k != "__name__"},
        }
        if native["ts"] is None:
            del native["ts"]
        return [sample_from(native, self.default_namespace)]
