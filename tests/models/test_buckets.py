"""Histogram quantiles read again with a tail-shaped density: continuous and monotone across
buckets, and a p99 just past a bucket bound no longer reads a canary a few percent slower as
tens of percent slower, while a real regression still reads as one."""

from __future__ import annotations

import doctest
import math
import pickle
from itertools import pairwise
from statistics import NormalDist

import numpy as np
import pytest

from benchmarks.scenarios.histogram import histogram_quantile
from config.detection import BUCKET_PRESETS
from config.schema import SentinelConfig
from detector.core.signals import SignalState, derived
from detector.core.types import SignalKind
from models import buckets
from models.buckets import SIGMA_REF, BucketReading, quantile_of, shared_reading

BOUNDS = BUCKET_PRESETS["prometheus"]


def test_doctests() -> None:
    assert doctest.testmod(buckets).failed == 0


@pytest.mark.parametrize("q", [None, 0.5, 0.9, 0.99, 0.999])
def test_the_reading_is_monotone_stays_in_its_bucket_and_keeps_every_bound(
    q: float | None,
) -> None:
    r = BucketReading(BOUNDS, q)
    xs = np.linspace(0.0001, 12.0, 200_001)
    ys = [r.read(float(x)) for x in xs]
    assert all(b >= a for a, b in pairwise(ys))
    assert [r.read(b) for b in BOUNDS] == list(BOUNDS)
    for x, y in zip(xs, ys, strict=True):
        k = int(np.searchsorted(BOUNDS, x))
        if 0 < k < len(BOUNDS):
            assert BOUNDS[k - 1] <= y <= BOUNDS[k] * (1 + 1e-12)
        else:
            assert y == x  # the first bucket and beyond the last bound: unchanged
    # continuous across every bound: just below and just above it read next to it
    for b in BOUNDS:
        assert r.read(b * (1 - 1e-9)) == pytest.approx(b, rel=1e-6)
        assert r.read(b * (1 + 1e-9)) == pytest.approx(b, rel=1e-6)


def test_the_reading_falls_towards_the_lower_bound_as_the_quantile_rises() -> None:
    past = [BucketReading(BOUNDS, q).read(0.15) for q in (0.5, 0.9, 0.99, 0.999)]
    assert past == sorted(past, reverse=True)
    # a median halfway into a bucket, in share, sits at its middle in log: the lognormal is
    # symmetric in log about its median
    assert BucketReading(BOUNDS, 0.5).read(0.175) == pytest.approx(math.sqrt(0.1 * 0.25))
    assert BucketReading(BOUNDS, None).read(0.15) == BucketReading(BOUNDS, 0.5).read(0.15)


def test_the_table_is_within_1e4_of_the_exact_reading() -> None:
    z = NormalDist().inv_cdf(0.99)
    rng = np.random.default_rng(5)
    reading = BucketReading(BOUNDS, 0.99)
    for _ in range(300):
        k = int(rng.integers(5, len(BOUNDS)))
        lo, hi = BOUNDS[k - 1], BOUNDS[k]
        value = float(rng.uniform(lo, hi))
        a, b = math.log(lo), math.log(hi)
        for _ in range(60):  # bisection on log(x) for the lognormal that fits the share
            m = (a + b) / 2
            below_lo = NormalDist().cdf(z - (m - math.log(lo)) / SIGMA_REF)
            below_hi = NormalDist().cdf(z + (math.log(hi) - m) / SIGMA_REF)
            share = (0.99 - below_lo) / (below_hi - below_lo)
            a, b = (m, b) if share < (value - lo) / (hi - lo) else (a, m)
        assert reading.read(value) == pytest.approx(math.exp(a), rel=1e-4)


@pytest.mark.parametrize(
    ("name", "q"),
    [
        ("latency_p99_seconds", 0.99),
        ("latency_p50_seconds", 0.5),
        ("http_p999_ms", 0.999),
        ("p95", 0.95),
        ("error_rate", None),
        ("latency_seconds", None),
        ("top99", None),
    ],
)
def test_the_quantile_is_read_from_the_name(name: str, q: float | None) -> None:
    assert quantile_of(name) == q


def _p99_readings(scale: float, n: int, windows: int, seed: int) -> np.ndarray:
    """histogram_quantile p99s of ``windows`` windows of ``n`` lognormal (spread 0.35)
    latencies whose median is ``scale``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(windows):
        x = np.sort(scale * np.exp(0.35 * rng.standard_normal(n)))
        cum = np.append(np.searchsorted(x, BOUNDS, side="right"), n).astype(np.float64)
        out.append(histogram_quantile(0.99, np.asarray(BOUNDS), cum))
    return np.asarray(out)


def _mean_log_ratio(canary: np.ndarray, baseline: np.ndarray, reading: BucketReading) -> float:
    c = np.log([reading.read(float(v)) for v in canary])
    b = np.log([reading.read(float(v)) for v in baseline])
    return float(c.mean() - b.mean())


def test_a_canary_three_percent_slower_at_a_bucket_bound_no_longer_reads_much_slower() -> None:
    # p99 at 0.0985 s: just under the 0.1 s bound; the canary's 3 % more takes it past
    median = 0.0985 / math.exp(0.35 * 2.326)
    baseline = _p99_readings(median, 20_000, 200, 1)
    canary = _p99_readings(median * 1.03, 1_000, 200, 2)
    linear = float(np.log(canary).mean() - np.log(baseline).mean())
    reread = _mean_log_ratio(canary, baseline, BucketReading(BOUNDS, 0.99))
    assert linear > math.log(1.10)  # histogram_quantile alone: past the 10 % minimum effect
    assert reread < math.log(1.05)


@pytest.mark.parametrize("factor", [1.4, 2.0])
def test_a_real_regression_inside_a_bucket_still_reads_past_the_minimum_effect(
    factor: float,
) -> None:
    median = 0.11 / math.exp(0.35 * 2.326)  # p99 0.11 s, and 0.154 or 0.22 s: one bucket
    baseline = _p99_readings(median, 20_000, 200, 3)
    canary = _p99_readings(median * factor, 1_000, 200, 4)
    reread = _mean_log_ratio(canary, baseline, BucketReading(BOUNDS, 0.99))
    assert reread > math.log(1.2)


def test_only_latency_signals_with_buckets_are_read_again() -> None:
    plain = SentinelConfig().detection
    given = plain.model_copy(update={"histogram_buckets": BOUNDS})
    assert derived("latency_p99_seconds", SignalKind.LATENCY, plain).reading is None
    assert derived("error_rate", SignalKind.ERROR_RATE, given).reading is None
    reading = derived("latency_p99_seconds", SignalKind.LATENCY, given).reading
    assert reading is not None and reading.read(0.15) == BucketReading(BOUNDS, 0.99).read(0.15)
    own = given.model_copy(update={"quantile": 0.5})
    mine = derived("latency_p99_seconds", SignalKind.LATENCY, own).reading
    assert mine is not None and mine.read(0.15) == BucketReading(BOUNDS, 0.5).read(0.15)
    state = SignalState("latency_p99_seconds", SignalKind.LATENCY, given, 360)
    assert state.reading is not None


def test_a_pickled_reading_is_its_layout_and_quantile_and_comes_back_shared() -> None:
    reading = shared_reading(BOUNDS, 0.99)
    blob = pickle.dumps(reading)
    assert len(blob) < 300  # not the tables: 129 latencies per bucket
    assert pickle.loads(blob) is reading
    assert pickle.loads(pickle.dumps(BucketReading(BOUNDS, 0.5))) is shared_reading(BOUNDS, 0.5)
