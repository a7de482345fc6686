"""The scenario generator: deterministic per seed, ground truth consistent with what it
generates, and records the decoder accepts."""

from __future__ import annotations

import json
import statistics
from functools import cache

import pytest

from benchmarks.scenarios import FAMILIES, ScenarioSpec, build, generate, group_of
from detector.core.types import Sample
from detector.sources.native import NativeFormat


@cache
def _lines(family: str, seed: int = 3, index: int = 0) -> tuple[ScenarioSpec, tuple[str, ...]]:
    spec = build(family, seed, index)
    return spec, tuple(generate(spec))


def _series(lines: tuple[str, ...], role: str, signal: str) -> list[tuple[float, float, int]]:
    """``(ts, value, count)`` of one role's signal, by event time."""
    recs = [json.loads(ln) for ln in lines]
    return sorted(
        (float(r["ts"]), float(r["value"]), int(r["count"]))
        for r in recs
        if r["role"] == role and r["signal"] == signal
    )


def _values(lines: tuple[str, ...], role: str, signal: str, after: float) -> list[float]:
    return [v for ts, v, _ in _series(lines, role, signal) if ts > after]


def test_same_seed_same_records_other_seed_other_records() -> None:
    a = generate(build("reg_latency_2x", 11, 2))
    assert a == generate(build("reg_latency_2x", 11, 2))
    assert a != generate(build("reg_latency_2x", 12, 2))
    assert build("healthy_plain", 11, 0) != build("healthy_plain", 11, 1)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_ground_truth_is_consistent(family: str) -> None:
    for index in range(3):
        s = build(family, 5, index)
        group = group_of(family)
        assert s.family == family
        assert s.subtle == (group == "subtle")
        if group in ("healthy", "shared"):
            assert not s.should_rollback and s.onset is None
        else:
            assert s.should_rollback and s.onset is not None
            # onset inside the canary run, leaving time to catch it
            assert s.canary_start <= s.onset <= s.canary_end - 600.0
        assert s.canary_start - s.t0 == 7200.0
        assert 20 * 60 <= s.canary_end - s.canary_start <= 30 * 60


def test_records_decode_as_native_samples() -> None:
    spec, lines = _lines("healthy_plain")
    fmt = NativeFormat("default", 65536)
    samples = [s for ln in lines for s in fmt.decode(ln.encode()) if isinstance(s, Sample)]
    assert len(samples) == len(lines)
    assert {s.signal for s in samples} == {
        "latency_p50_seconds",
        "latency_p99_seconds",
        "error_rate",
        "requests_per_second",
    }
    canary = [s for s in samples if s.role.value == "canary"]
    assert {s.labels["revision"] for s in canary} == {spec.canary_revision}
    assert min(s.ts for s in canary) >= spec.canary_start
    assert min(s.ts for s in samples) < spec.canary_start - 7000  # two hours of baseline history


def test_error_rate_is_errors_over_requests() -> None:
    _, lines = _lines("reg_errors_plus2")
    for _, value, count in _series(lines, "canary", "error_rate"):
        assert abs(value * count - round(value * count)) < 1e-6


def test_canary_throughput_follows_its_share() -> None:
    spec, lines = _lines("healthy_small_canary")
    canary_rps = sum(_values(lines, "canary", "requests_per_second", spec.canary_start))
    base_rps = sum(_values(lines, "baseline", "requests_per_second", spec.canary_start))
    assert canary_rps / (canary_rps + base_rps) == pytest.approx(0.05, rel=0.1)


def test_throughput_halved_serves_half_its_share() -> None:
    spec, lines = _lines("reg_throughput_halved")
    factor = spec.notes["factor"]
    w = spec.weight_at(spec.canary_end)
    onset = float(spec.onset or 0)
    after = _values(lines, "canary", "requests_per_second", onset)
    base = _values(lines, "baseline", "requests_per_second", onset)
    share = sum(after) / sum(base)
    assert share == pytest.approx(factor * w / (1 - w), rel=0.1)


def test_latency_regression_is_in_the_canary_only_after_onset() -> None:
    spec, lines = _lines("reg_latency_2x")
    onset = float(spec.onset or 0)
    c_after = statistics.median(_values(lines, "canary", "latency_p50_seconds", onset + 30))
    b_after = statistics.median(_values(lines, "baseline", "latency_p50_seconds", onset + 30))
    assert c_after / b_after == pytest.approx(spec.notes["factor"], rel=0.15)


def test_slow_tail_moves_p99_not_p50() -> None:
    spec, lines = _lines("reg_slow_tail")
    onset = float(spec.onset or 0)

    def ratio(signal: str) -> float:
        c = _values(lines, "canary", signal, onset)
        return statistics.median(c) / statistics.median(_values(lines, "baseline", signal, onset))

    assert ratio("latency_p99_seconds") > 1.3
    assert ratio("latency_p50_seconds") < 1.15


def test_late_records_arrive_out_of_order_by_at_most_15_s() -> None:
    _, lines = _lines("healthy_out_of_order")
    newest = float("-inf")
    worst = 0.0
    for ln in lines:
        ts = float(json.loads(ln)["ts"])
        worst = max(worst, newest - ts)
        newest = max(newest, ts)
    assert 5.0 < worst <= 15.0


def test_dropped_family_loses_canary_samples() -> None:
    spec, lines = _lines("healthy_dropped")
    ts = [t for t, _, _ in _series(lines, "canary", "requests_per_second")]
    expected = (spec.canary_end - spec.canary_start) / spec.interval
    assert len(ts) < 0.92 * expected
    gap_start, gap_end = spec.gaps[0]
    assert not [t for t in ts if gap_start + 10 < t < gap_end - 5]
