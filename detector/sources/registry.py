"""Record formats by their YAML ``type:`` (``kafka.metrics_format``)."""

from __future__ import annotations

from collections.abc import Callable

from detector.sources.base import RecordFormat
from detector.sources.native import NativeFormat
from detector.sources.otlp_json import OtlpJsonFormat
from detector.sources.prometheus_adapter import PrometheusAdapterFormat

FORMATS: dict[str, Callable[[str, int], RecordFormat]] = {
    "native": NativeFormat,
    "prometheus-adapter": PrometheusAdapterFormat,
    "otlp-json": OtlpJsonFormat,
}


def build_format(type_name: str, default_namespace: str, max_bytes: int) -> RecordFormat:
    """The format for ``type_name``; config validation guarantees it is known."""
    try:
        factory = FORMATS[type_name]
    except KeyError:
        raise ValueError(
            f"unknown record format {type_name!r}; known: {', '.join(sorted(FORMATS))}"
        ) from None
    return factory(default_namespace, max_bytes)
