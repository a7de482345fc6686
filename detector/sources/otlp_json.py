"""``type: otlp-json``: OTLP metrics as JSON, as the OpenTelemetry Collector's Kafka exporter
writes them (``encoding: otlp_json``). Gauge and sum data points become samples.

Service: the data point's ``service`` attribute or the resource's ``service.name``; role: the
``role`` (or ``deployment.role``) attribute of the point or resource; namespace:
``k8s.namespace.name``; signal: the metric name; count: a ``count`` attribute when present.
"""

from __future__ import annotations

from typing import Any

from detector.core.types import Sample
from detector.sources.base import DecodeError
from detector.sources.native import load_object, sample_from


def _attrs(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(items, list):
        return out
    for a in items:
        if (
            isinstance(a, dict)
            and isinstance(a.get("key"), str)
            and isinstance(a.get("value"), dict)
        ):
            val = a["value"]
            for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
                if k in val:
                    out[a["key"]] = val[k]
                    break
    return out


def _point(point: dict[str, Any], name: str, res: dict[str, Any], ns: str) -> Sample:
    attrs = {**res, **_attrs(point.get("attributes"))}
    raw_ts = point.get("timeUnixNano")
    try:
        ts = int(raw_ts) / 1e9 if raw_ts is not None else None
    except (TypeError, ValueError):
        raise DecodeError("bad_timestamp", "`timeUnixNano` must be an integer") from None
    if "asDouble" in point:
        value = point["asDouble"]
    elif "asInt" in point:
        try:
            value = int(point["asInt"])
        except (TypeError, ValueError):
            raise DecodeError("bad_value", "`asInt` must be an integer") from None
    else:
        raise DecodeError("missing_field", f"data point of {name} has no asDouble/asInt")
    count = attrs.get("count")
    native: dict[str, Any] = {
        "service": attrs.get("service") or attrs.get("service.name"),
        "namespace": attrs.get("k8s.namespace.name"),
        "role": attrs.get("role") or attrs.get("deployment.role"),
        "signal": name,
        "value": value,
        "labels": {k: str(v) for k, v in attrs.items() if isinstance(v, str)},
    }
    if ts is not None:
        native["ts"] = ts
    if count is not None:
        try:
            native["count"] = int(count)
        except (TypeError, ValueError):
            raise DecodeError("wrong_type", "`count` attribute must be an integer") from None
    return sample_from(native, ns)


class OtlpJsonFormat:
    type_name = "otlp-json"

    def __init__(self, default_namespace: str = "default", max_bytes: int = 65536) -> None:
        self.default_namespace = default_namespace
        self.max_bytes = max_bytes

    def decode(self, raw: bytes) -> list[Sample]:
        obj = load_object(raw, self.max_bytes)
        rms = obj.get("resourceMetrics")
        if not isinstance(rms, list):
            raise DecodeError("missing_field", "OTLP record needs `resourceMetrics`")
        out: list[Sample] = []
        for rm in rms:
            if not isinstance(rm, dict):
                raise DecodeError("wrong_type", "`resourceMetrics` items must be objects")
            res = _attrs((rm.get("resource") or {}).get("attributes"))
            for sm in rm.get("scopeMetrics") or []:
                for metric in (sm or {}).get("metrics") or []:
                    name = metric.get("name")
                    if not isinstance(name, str) or not name:
                        raise DecodeError("missing_field", "metric without a `name`")
                    body = metric.get("gauge") or metric.get("sum")
                    if not isinstance(body, dict):
                        continue  # histograms and summaries are not signals here
                    for point in body.get("dataPoints") or []:
                        out.append(_point(point, name, res, self.default_namespace))
        if not out:
            raise DecodeError("missing_field", "OTLP record carries no gauge or sum data point")
        return out
