"""Every rule of the native record format, and the other formats' mappings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.core.types import LogRecord, Role, Sample, SignalKind
from detector.sources.base import BatchErrors, DecodeError
from detector.sources.native import NativeFormat, _sample_checked, sample_from
from detector.sources.otlp_json import OtlpJsonFormat
from detector.sources.prometheus_adapter import PrometheusAdapterFormat

GOOD: dict[str, Any] = {
    "ts": 1795760000.5,
    "service": "checkout",
    "namespace": "shop",
    "role": "canary",
    "signal": "latency_p99_seconds",
    "kind": "latency",
    "value": 0.25,
    "count": 120,
    "labels": {"revision": "7"},
}
fmt = NativeFormat("default", 4096)


def _decode(obj: Any) -> Sample | LogRecord:
    (rec,) = fmt.decode(orjson.dumps(obj))
    return rec


def test_a_good_sample_decodes_to_every_field() -> None:
    s = _decode(GOOD)
    assert s == Sample(
        1795760000.5,
        "checkout",
        "shop",
        Role.CANARY,
        "latency_p99_seconds",
        0.25,
        SignalKind.LATENCY,
        120,
        {"revision": "7"},
    )


@pytest.mark.parametrize(
    ("role", "expected"),
    [("stable", Role.BASELINE), ("primary", Role.BASELINE), ("baseline", Role.BASELINE)],
)
def test_baseline_aliases(role: str, expected: Role) -> None:
    s = _decode({**GOOD, "role": role})
    assert isinstance(s, Sample) and s.role is expected


def test_optional_fields_default() -> None:
    s = _decode(
        {k: v for k, v in GOOD.items() if k not in ("namespace", "kind", "count", "labels")}
    )
    assert isinstance(s, Sample)
    assert (s.namespace, s.kind, s.count, s.labels) == ("default", None, None, {})


def test_rfc3339_timestamps() -> None:
    s = _decode({**GOOD, "ts": "2026-11-27T10:15:00.250+01:00"})
    assert s.ts == pytest.approx(1795770900.25)


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


BAD: list[tuple[str, bytes, str]] = [
    ("missing ts", orjson.dumps(_without("ts")), "missing_field"),
    ("missing service", orjson.dumps(_without("service")), "missing_field"),
    ("missing role", orjson.dumps(_without("role")), "missing_field"),
    ("missing signal", orjson.dumps(_without("signal")), "missing_field"),
    ("missing value", orjson.dumps(_without("value")), "missing_field"),
    ("value a string", orjson.dumps({**GOOD, "value": "0.2"}), "wrong_type"),
    ("value a bool", orjson.dumps({**GOOD, "value": True}), "wrong_type"),
    ("value null", orjson.dumps({**GOOD, "value": None}), "wrong_type"),
    ("service a number", orjson.dumps({**GOOD, "service": 5}), "wrong_type"),
    ("empty service", orjson.dumps({**GOOD, "service": ""}), "wrong_type"),
    ("namespace a list", orjson.dumps({**GOOD, "namespace": ["a"]}), "wrong_type"),
    ("unknown kind", orjson.dumps({**GOOD, "kind": "vibes"}), "wrong_type"),
    ("labels not strings", orjson.dumps({**GOOD, "labels": {"a": 1}}), "wrong_type"),
    ("labels a list", orjson.dumps({**GOOD, "labels": ["a"]}), "wrong_type"),
    ("unknown role", orjson.dumps({**GOOD, "role": "shadow"}), "bad_role"),
    ("role a number", orjson.dumps({**GOOD, "role": 1}), "bad_role"),
    ("negative count", orjson.dumps({**GOOD, "count": -1}), "negative_count"),
    ("fractional count", orjson.dumps({**GOOD, "count": 1.5}), "wrong_type"),
    ("count a string", orjson.dumps({**GOOD, "count": "5"}), "wrong_type"),
    ("unparseable ts", orjson.dumps({**GOOD, "ts": "yesterday"}), "bad_timestamp"),
    ("ts without zone", orjson.dumps({**GOOD, "ts": "2026-11-27T10:15:00"}), "bad_timestamp"),
    ("negative ts", orjson.dumps({**GOOD, "ts": -5}), "bad_timestamp"),
    ("ts a bool", orjson.dumps({**GOOD, "ts": True}), "bad_timestamp"),
    ("NaN value", b'{"ts":1,"service":"a","role":"canary","signal":"s","value":NaN}', "not_json"),
    (
        "infinite value",
        b'{"ts":1,"service":"a","role":"canary","signal":"s","value":1e999}',
        "non_finite",
    ),
    ("not JSON", b"hello", "not_json"),
    ("binary", b"\xff\xfe\x00\x01", "not_json"),
    ("empty", b"", "not_json"),
    ("JSON array", b"[1,2]", "not_object"),
    ("JSON string", b'"x"', "not_object"),
    ("oversized", orjson.dumps({**GOOD, "labels": {"pad": "x" * 5000}}), "oversized"),
    (
        "log without message",
        orjson.dumps({"ts": 1, "service": "a", "role": "canary", "level": "error"}),
        "missing_field",
    ),
    (
        "log message a number",
        orjson.dumps({"ts": 1, "service": "a", "role": "canary", "level": "error", "message": 5}),
        "wrong_type",
    ),
]


@pytest.mark.parametrize(("raw", "kind"), [(b, k) for _, b, k in BAD], ids=[n for n, _, _ in BAD])
def test_every_rule_is_checked(raw: bytes, kind: str) -> None:
    with pytest.raises(DecodeError) as info:
        fmt.decode(raw)
    assert info.value.kind == kind
    assert info.value.reason


def test_log_records_decode() -> None:
    rec = _decode(
        {"ts": 5, "service": "a", "role": "stable", "level": "ERROR", "message": "boom 42"}
    )
    assert rec == LogRecord(5.0, "a", "default", Role.BASELINE, "ERROR", "boom 42", {})


def test_prometheus_adapter_record() -> None:
    raw = orjson.dumps(
        {
            "timestamp": "2026-11-27T10:15:00Z",
            "value": "0.231",
            "name": "latency_p99_seconds",
            "labels": {
                "__name__": "latency_p99_seconds",
                "app": "checkout",
                "track": "canary",
                "namespace": "shop",
                "pod": "p-1",
            },
        }
    )
    (s,) = PrometheusAdapterFormat().decode(raw)
    assert (s.service, s.role, s.namespace, s.signal, s.value) == (
        "checkout",
        Role.CANARY,
        "shop",
        "latency_p99_seconds",
        0.231,
    )
    assert s.labels["pod"] == "p-1" and "__name__" not in s.labels
    with pytest.raises(DecodeError) as info:
        PrometheusAdapterFormat().decode(raw.replace(b'"0.231"', b'"NaN"'))
    assert info.value.kind == "non_finite"


def test_otlp_json_gauge_points() -> None:
    def attr(k: str, v: str) -> dict[str, Any]:
        return {"key": k, "value": {"stringValue": v}}

    raw = orjson.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {
                        "attributes": [
                            attr("service.name", "checkout"),
                            attr("k8s.namespace.name", "shop"),
                        ]
                    },
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": "error_rate",
                                    "gauge": {
                                        "dataPoints": [
                                            {
                                                "timeUnixNano": "1795760000000000000",
                                                "asDouble": 0.01,
                                                "attributes": [
                                                    attr("role", "canary"),
                                                    {"key": "count", "value": {"intValue": "300"}},
                                                ],
                                            },
                                            {
                                                "timeUnixNano": "1795760000000000000",
                                                "asDouble": 0.02,
                                                "attributes": [attr("role", "baseline")],
                                            },
                                        ]
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )
    a, b = OtlpJsonFormat().decode(raw)
    assert (a.service, a.namespace, a.role, a.value, a.count, a.ts) == (
        "checkout",
        "shop",
        Role.CANARY,
        0.01,
        300,
        1795760000.0,
    )
    assert b.role is Role.BASELINE and b.count is None


# a good record with up to three fields changed (to another good value, a broken one, or
# removed): the fast path must build exactly what the careful checks build, or fail as they do
_ABSENT = object()
_FIELD_VALUES: dict[str, list[Any]] = {
    "ts": [0.0, 7, -1.0, "2026-11-27T10:15:00Z", True, None, _ABSENT],
    "service": ["", 5, None, _ABSENT],
    "namespace": ["", ["a"], None, _ABSENT],
    "role": ["stable", "shadow", 1, ["canary"], None, _ABSENT],
    "signal": ["", 3, _ABSENT],
    "kind": ["error_rate", "vibes", 2, True, ["latency"], {"a": "b"}, None, _ABSENT],
    "value": [3, -1.5, "0.2", False, None, _ABSENT],
    "count": [0, -1, 2.0, 1.5, "5", True, None, _ABSENT],
    "labels": [{}, {"a": 1}, {"a": "b", "c": None}, ["a"], None, _ABSENT],
}
_change = st.sampled_from(sorted(_FIELD_VALUES)).flatmap(
    lambda k: st.tuples(st.just(k), st.sampled_from(_FIELD_VALUES[k]))
)
_records = st.lists(_change, max_size=3).map(
    lambda changes: {k: v for k, v in {**GOOD, **dict(changes)}.items() if v is not _ABSENT}
)


def _outcome(decode: Any, obj: dict[str, Any]) -> object:
    try:
        return decode(obj, "default")
    except DecodeError as err:
        return err.kind


@settings(max_examples=500, deadline=None)
@given(obj=_records)
def test_the_fast_path_builds_what_the_checks_build(obj: dict[str, Any]) -> None:
    # repr: every field is set, and 3 is not 3.0
    expected = repr(_outcome(_sample_checked, obj))
    assert repr(_outcome(sample_from, obj)) == expected
    # as orjson builds it, with its own key objects (what the fast path is written for)
    assert repr(_outcome(sample_from, orjson.loads(orjson.dumps(obj)))) == expected


_IDENTITY_CHECK = """
import orjson
from detector.sources import native
ours = [native._TS, native._SERVICE, native._NAMESPACE, native._ROLE, native._SIGNAL,
        native._KIND, native._VALUE, native._COUNT, native._LABELS]
keys = list(orjson.loads(orjson.dumps(dict.fromkeys(
    ["ts", "service", "namespace", "role", "signal", "kind", "value", "count", "labels"], 1))))
assert ours == keys, (ours, keys)
assert all(a is b for a, b in zip(ours, keys)), "orjson handed out other key objects"
"""


def test_the_fast_path_looks_fields_up_by_orjson_own_key_objects() -> None:
    # The lookups are identity hits while orjson's key cache still holds the objects captured at
    # import, as in a replay. orjson's cache is bounded: in a process that has parsed many other
    # keys (this test session, a long-lived service with varied labels) an entry can be replaced,
    # and decoding then stays right but loses the speed. So the check runs in a fresh process.
    done = subprocess.run(
        [sys.executable, "-c", _IDENTITY_CHECK],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "raw",
    [
        orjson.dumps(GOOD),
        orjson.dumps({**GOOD, "kind": "vibes"}),
        orjson.dumps({"ts": 1.0, "service": "s", "role": "canary", "level": "warn", "message": ""}),
        b"[1]",
        b"not json",
        b"",
    ],
)
def test_decode_one_is_decode_of_one_record_for_bytes_and_ascii_text(raw: bytes) -> None:
    def result(decode: Callable[[], list[Sample | LogRecord]]) -> object:
        try:
            return decode()
        except DecodeError as err:
            return err.kind

    expected = result(lambda: fmt.decode(raw))
    assert result(lambda: [fmt.decode_one(raw)]) == expected
    assert result(lambda: [fmt.decode_one(raw.decode())]) == expected


def test_a_batch_is_its_records_one_by_one() -> None:
    log = {
        "ts": 1795760001.0,
        "service": "checkout",
        "role": "canary",
        "level": "error",
        "message": "boom",
    }
    items = [GOOD, {**GOOD, "role": "baseline", "value": 0.2}, log]
    assert fmt.decode(orjson.dumps(items)) == [_decode(i) for i in items]


def test_a_batch_keeps_its_usable_records_and_names_each_rejected_one() -> None:
    items = [GOOD, {**GOOD, "value": "slow"}, [GOOD], {**GOOD, "ts": 2.0}, 7]
    with pytest.raises(BatchErrors) as caught:
        fmt.decode(orjson.dumps(items))
    err = caught.value
    assert err.records == [_decode(GOOD), _decode({**GOOD, "ts": 2.0})]
    assert [(r.index, r.error.kind) for r in err.rejected] == [
        (1, "wrong_type"),
        (2, "not_object"),
        (4, "not_object"),
    ]
    assert [orjson.loads(r.raw) for r in err.rejected] == [items[1], items[2], items[4]]
    assert err.kind == "wrong_type"
    assert err.reason.startswith("3 of 5 records of the batch rejected; record 1: `value`")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(b"[]", "empty_batch"), (b" [ ] ", "empty_batch"), (b"[" + b"1," * 3000 + b"1]", "oversized")],
)
def test_a_batch_with_nothing_to_judge_is_refused_whole(raw: bytes, kind: str) -> None:
    with pytest.raises(DecodeError) as caught:
        fmt.decode(raw)
    assert caught.value.kind == kind and not isinstance(caught.value, BatchErrors)
