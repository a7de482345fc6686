"""Contract of the record-format seam: whatever the bytes, a format returns records or raises
DecodeError, never anything else, and decoding is deterministic."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.core.types import LogRecord, Sample
from detector.sources.base import DecodeError, RecordFormat
from detector.sources.fake import FakeFormat
from detector.sources.native import NativeFormat
from detector.sources.otlp_json import OtlpJsonFormat
from detector.sources.prometheus_adapter import PrometheusAdapterFormat
from detector.sources.registry import FORMATS, build_format

IMPLEMENTATIONS: list[RecordFormat] = [
    NativeFormat(),
    PrometheusAdapterFormat(),
    OtlpJsonFormat(),
    FakeFormat({}),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "ts",
        "service",
        "role",
        "signal",
        "value",
        "count",
        "labels",
        "kind",
        "namespace",
        "level",
        "message",
        "timestamp",
        "name",
        "resourceMetrics",
        "scopeMetrics",
        "metrics",
        "gauge",
        "dataPoints",
        "asDouble",
        "timeUnixNano",
        "attributes",
    ]
)
records = st.dictionaries(keys, json_values, max_size=10).map(
    lambda d: json.dumps(d).encode()
) | st.binary(max_size=200)


@pytest.mark.parametrize("fmt", IMPLEMENTATIONS, ids=lambda f: f.type_name)
@settings(max_examples=150, deadline=None)
@given(raw=records)
def test_only_records_or_decode_errors(fmt: RecordFormat, raw: bytes) -> None:
    try:
        first = fmt.decode(raw)
    except DecodeError as err:
        assert err.kind and err.reason
        with pytest.raises(DecodeError):
            fmt.decode(raw)
        return
    assert all(isinstance(r, Sample | LogRecord) for r in first)
    assert list(fmt.decode(raw)) == list(first)


def test_the_registry_knows_every_configurable_format() -> None:
    from typing import get_args

    from config.schema import KafkaSettings

    allowed = get_args(KafkaSettings.model_fields["metrics_format"].annotation)
    assert set(allowed) == set(FORMATS)
    for name in allowed:
        assert build_format(name, "default", 1000).type_name == name
    with pytest.raises(ValueError, match="unknown record format"):
        build_format("csv", "default", 1000)
