"""Latency quantiles of windows too small for them: one sample's excess is clipped.

Below 1 / (1 - q) requests a window's q-quantile lies at its slowest request (in its bucket, read
from a histogram), so with a heavy latency tail one request lifts a sample 3-5x. These tests pin
the clip in the mean-shift test (a run of such jumps no longer decides alone, a real shift still
does), which signals the judge applies it to, and the canaries of the independent generator it
was made for, told the buckets and told nothing.
"""

from __future__ import annotations

import math
import random

import pytest

import detector.core.signals as signals
from benchmarks.canary_scenarios import ours, score
from benchmarks.scenarios import independent as ind
from config.detection import DetectionSettings
from config.schema import SentinelConfig
from detector.core.types import SignalKind
from models.buckets import shared_reading
from models.compare import MeanShiftTest, alarm_threshold

M = math.log(1.1)
THRESHOLD = alarm_threshold(0.01, 360)
SD = 0.3


def _jumpy(clip: float, seed: int) -> bool:
    """A healthy small canary read from buckets: mostly at its baseline, and now and then (in a
    run of three) its slowest request's bucket, 3x higher. True if it is flagged."""
    rng = random.Random(seed)
    t = MeanShiftTest(M, THRESHOLD)
    for i in range(360):
        x = math.log(3.0) if i % 60 in (30, 31, 32) else rng.gauss(-0.1, 0.1)
        if t.update(x, 1.0, SD * SD, clip=clip).failed:
            return True
    return False


def test_a_run_of_one_request_jumps_decides_only_without_the_clip() -> None:
    assert all(_jumpy(math.inf, s) for s in range(10))
    assert not any(_jumpy(signals.SMALL_WINDOW_CLIP, s) for s in range(10))


def test_a_real_shift_is_still_caught_with_the_clip() -> None:
    rng = random.Random(1)
    t = MeanShiftTest(M, THRESHOLD)
    x = math.log(2.0)  # 2x: about two standard deviations above the bar
    fails = [t.update(x + rng.gauss(0.0, SD), 1.0, SD * SD, clip=2.0).failed for _ in range(30)]
    assert any(fails)


@pytest.mark.parametrize(("q", "below"), [(0.99, 100.0), (0.999, 1000.0), (None, 2.0)])
def test_a_reading_knows_the_window_size_below_which_one_request_decides(
    q: float | None, below: float
) -> None:
    assert shared_reading((0.1, 0.25, 0.5), q).top_count == pytest.approx(below)


def test_a_pareto_tailed_canary_of_six_requests_a_second_is_not_rolled_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the independent generator's seed 9 healthy_plain-1: about 60 requests per window, its p99
    # read from the default buckets jumps to 3-5x its baseline's now and then
    spec = ind.build("healthy_plain", 9, 1)
    lines = ind.generate(spec, "prometheus")
    told = SentinelConfig(detection=DetectionSettings(histogram_buckets="prometheus"))
    assert score(spec, ours(told)(lines)).rollback_ts is None
    # without the clip, and with half the threshold a sample (the cap when the clip was made)
    monkeypatch.setattr(signals, "SMALL_WINDOW_CLIP", math.inf)
    monkeypatch.setattr(MeanShiftTest, "SAMPLE_CAP", 0.5)
    assert score(spec, ours(told)(lines)).false_rollback


@pytest.mark.parametrize(
    ("name", "kind", "detection", "below"),
    [
        ("latency_p99_seconds", SignalKind.LATENCY, {}, 100.0),
        ("latency_p50_seconds", SignalKind.LATENCY, {}, 2.0),
        ("latency_p99_seconds", SignalKind.LATENCY, {"histogram_buckets": "prometheus"}, 100.0),
        ("latency_p99_seconds", SignalKind.LATENCY, {"exact_quantiles": True}, 0.0),
        ("latency_seconds", SignalKind.LATENCY, {}, 0.0),  # quantile unknown
        ("error_rate", SignalKind.ERROR_RATE, {}, 0.0),
    ],
)
def test_the_clip_applies_unless_the_quantiles_are_declared_exact(
    name: str, kind: SignalKind, detection: dict[str, object], below: float
) -> None:
    s = DetectionSettings.model_validate(detection)
    assert signals.SignalState(name, kind, s, 100).clip_below == pytest.approx(below)


@pytest.mark.parametrize(
    ("family", "seed", "index"),
    [("healthy_lowtraffic", 15, 0), ("shared_dep_outage", 5, 4), ("reg_split_change", 5, 1)],
)
def test_histogram_tails_told_nothing_do_not_roll_back_before_their_time(
    family: str, seed: int, index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the independent generator's canaries of a few requests a second, p99 read from the default
    # buckets, and the judge not told so: without the clip, each was rolled back (the split
    # change before its regression began) at a false-positive budget of 0.01, the default when
    # the clip was made (at 0.001 the higher threshold alone keeps some of them)
    spec = ind.build(family, seed, index)
    lines = ind.generate(spec, "prometheus")
    plain = SentinelConfig(detection=DetectionSettings(false_positive_budget=0.01))
    assert not score(spec, ours(plain)(lines)).false_rollback
    monkeypatch.setattr(signals, "SMALL_WINDOW_CLIP", math.inf)
    monkeypatch.setattr(MeanShiftTest, "SAMPLE_CAP", 0.5)  # the cap when the clip was made
    assert score(spec, ours(plain)(lines)).false_rollback
