"""``exact_quantiles``: an exact p99 of fewer requests reads lower, and the judge allows for it.

The allowance lowers the mean-shift test's bar by the expected low reading, never below the
baseline itself; it applies to exact p99s (and p999s) only. These tests pin the allowance's size
against simulated sample quantiles, what it may and may not flag, where it applies, and one
benchmark canary (a slow tail present from its first request, on about 7 requests/s) that only
the allowance catches.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from benchmarks.canary_scenarios import ours, score
from benchmarks.scenarios import build, generate
from config.detection import DetectionSettings
from config.schema import SentinelConfig
from detector.core.signals import EXACT_TAIL_LOW, derived
from detector.core.types import SignalKind
from models.compare import MeanShiftTest, alarm_threshold

M = math.log(1.1)
THRESHOLD = alarm_threshold(0.01, 360)


@pytest.mark.parametrize("n", [40, 160, 400])
def test_the_allowance_is_a_lower_bound_of_how_low_a_sample_p99_reads(n: int) -> None:
    # lognormal latencies with a 1 % tail 3x slower (the benchmark's shape): numpy's p99 of n
    # requests, in log, against the true p99
    rng = np.random.default_rng(n)
    big = 0.4 * rng.standard_normal(2_000_000) + math.log(3.0) * (rng.random(2_000_000) < 0.01)
    true = float(np.quantile(big, 0.99))
    reps = 400_000 // n
    logs = 0.4 * rng.standard_normal((reps, n)) + math.log(3.0) * (rng.random((reps, n)) < 0.01)
    d = np.log(np.quantile(np.exp(logs), 0.99, axis=1)) - true
    low = -float(d.mean())
    allowance = EXACT_TAIL_LOW / math.sqrt(n) * float(d.std())
    assert 0.0 < allowance < low
    assert allowance > 0.5 * low  # and not a negligible one


def _run(t: MeanShiftTest, level: float, sd: float, n: int, low: float, seed: int) -> bool:
    rng = random.Random(seed)
    return any(
        t.update(level + rng.gauss(0.0, sd), 1.0, sd * sd, low_read=low).failed for _ in range(n)
    )


def test_the_allowance_lowers_the_bar_but_never_below_the_baseline() -> None:
    sd = 0.2
    # a canary reading 10 % above its baseline: caught with a large allowance; without one it
    # is just at the minimum effect, flagged within the false-positive budget
    caught = sum(_run(MeanShiftTest(M, THRESHOLD), M, sd, 360, 0.2, s) for s in range(20))
    plain = sum(_run(MeanShiftTest(M, THRESHOLD), M, sd, 360, 0.0, s) for s in range(20))
    assert caught >= 18 and plain <= 2
    # a canary equal to its baseline's reading is not flagged, whatever the allowance
    assert not any(_run(MeanShiftTest(M, THRESHOLD), 0.0, sd, 360, 5.0, s) for s in range(20))


def test_only_exact_p99s_of_latency_signals_get_the_allowance() -> None:
    exact = DetectionSettings(exact_quantiles=True)
    assert derived("latency_p99_seconds", SignalKind.LATENCY, exact).tail_read == EXACT_TAIL_LOW
    assert derived("latency_p999_seconds", SignalKind.LATENCY, exact).tail_read == EXACT_TAIL_LOW
    assert derived("latency_p50_seconds", SignalKind.LATENCY, exact).tail_read == 0.0
    assert derived("latency_slow_seconds", SignalKind.LATENCY, exact).tail_read == 0.0
    named = exact.model_copy(update={"quantile": 0.99})
    assert derived("latency_slow_seconds", SignalKind.LATENCY, named).tail_read == EXACT_TAIL_LOW
    assert derived("queue_p99", SignalKind.SATURATION, exact).tail_read == 0.0
    assert derived("latency_p99_seconds", SignalKind.LATENCY, DetectionSettings()).tail_read == 0.0
    buckets = exact.model_copy(update={"histogram_buckets": (0.1, 1.0)})
    assert derived("latency_p99_seconds", SignalKind.LATENCY, buckets).tail_read == 0.0


def test_a_slow_tail_from_the_first_request_of_a_small_canary_is_caught_only_when_told() -> None:
    # seed 64's fifth slow-tail canary: about 7 requests/s, its p99 reads below the large
    # baseline's while healthy, and the tail (present from the start) lifts it only a little
    # above it
    spec = build("reg_slow_tail", 64, 4)
    lines = generate(spec)
    told = score(
        spec, ours(SentinelConfig(detection=DetectionSettings(exact_quantiles=True)))(lines)
    )
    plain = score(spec, ours(SentinelConfig())(lines))
    assert told.detected and not plain.detected and plain.rollback_ts is None
