"""The mean-shift test's tail-shape statistic: an exact tail quantile of a small canary, less the
median of the same window, against the baseline's.

A slow-request tail lifts a small canary's exact p99 only in the windows where one of its slow
requests lands in the top few, so the level's readings jump between where they were and far
above; pods drifting apart move the median and the tail alike, a slow tail the tail alone. These
tests pin what the shape may and may not do: add up a slow tail's many moderate samples, add at
most SHAPE_CAP of the threshold per sample (a paused pod's one or two extreme windows), never
flag a tail that moves with its median, and reach only the signals it is meant for.
"""

from __future__ import annotations

import math
import pickle
import random

import pytest

from benchmarks.canary_scenarios import ours, score
from benchmarks.scenarios import build, generate
from config.detection import DetectionSettings
from config.schema import SentinelConfig
from detector.core import signals
from detector.core.signals import SignalState, link_median, median_name
from detector.core.types import SignalKind
from models.compare import MeanShiftTest, alarm_threshold

M = math.log(1.1)
THRESHOLD = alarm_threshold(0.001, 360)
SD = 0.25  # noise of one paired p99 log-ratio at ~80 canary requests


def test_a_bimodal_tail_rise_is_caught_by_its_shape() -> None:
    # 40 % of the windows read 0.7 above the baseline, the rest 0.1 below: a mean of 0.22,
    # which the level's drift allowance (0.1 here) leaves little of; the shape needs none
    caught = level_only = 0
    for seed in range(20):
        rng = random.Random(seed)
        t, u = MeanShiftTest(M, THRESHOLD), MeanShiftTest(M, THRESHOLD)
        hit = hit_u = False
        for _ in range(200):
            y = (0.7 if rng.random() < 0.4 else -0.1) + rng.gauss(0.0, 0.1)
            t.shape_step(y, 1.0, SD * SD)
            hit = t.update(y, 1.0, SD * SD, extra_effect=0.1, shaped=True).failed or hit
            hit_u = u.update(y, 1.0, SD * SD, extra_effect=0.1).failed or hit_u
        caught += hit
        level_only += hit_u
    assert caught == 20 and level_only <= 8


def test_one_shape_sample_adds_at_most_its_cap() -> None:
    # a paused pod lifts two windows' tail far above their median: they stay well below the
    # threshold, lower than the level's own cap would let them
    t = MeanShiftTest(M, THRESHOLD)
    for i in range(30):
        t.shape_step(0.05 * (-1) ** i, 1.0, 0.01)
    for _ in range(2):
        t.shape_step(3.0, 1.0, 0.01)
    assert t.shape_best <= 2 * MeanShiftTest.SHAPE_CAP * THRESHOLD + 1e-9
    r = t.update(0.0, 1.0, 0.01, shaped=True)
    assert not r.failed and r.score < 2 * MeanShiftTest.SHAPE_CAP * THRESHOLD


def test_a_shape_equal_to_the_baselines_is_never_flagged() -> None:
    # the tail moving with the median (pods drifting apart): no shape evidence, however long
    for seed in range(20):
        rng = random.Random(seed)
        t = MeanShiftTest(M, THRESHOLD)
        for _ in range(360):
            t.shape_step(rng.gauss(0.0, SD), 1.0, SD * SD, low_read=0.05)
            assert not t.update(rng.gauss(0.0, SD), 1.0, SD * SD, shaped=True).failed


def test_a_checkpoint_from_before_the_shape_test_restores() -> None:
    t = MeanShiftTest(M, THRESHOLD)
    t.update(0.1, 1.0, 0.01)
    state = t.__reduce_ex__(2)[2]
    assert isinstance(state, tuple)
    old = {k: v for k, v in state[1].items() if not k.startswith("shape_")}
    u = pickle.loads(pickle.dumps(t))
    u.__setstate__((None, old))
    assert u.shape_cusum is None and u.shape_best == 0.0 and u.shape_n == 0
    u.shape_step(0.1, 1.0, 0.01)
    assert not u.update(0.1, 1.0, 0.01, shaped=True).failed


def test_only_an_exact_tail_is_linked_to_its_median() -> None:
    assert median_name("latency_p99_seconds") == "latency_p50_seconds"
    assert median_name("latency_p999_seconds") == "latency_p50_seconds"
    assert median_name("latency_p50_seconds") is None
    assert median_name("error_rate") is None

    def linked(settings: DetectionSettings, tail_first: bool) -> bool:
        names = ["latency_p99_seconds", "latency_p50_seconds"]
        signals: dict[str, SignalState] = {}
        for name in names if tail_first else names[::-1]:
            signals[name] = SignalState(name, SignalKind.LATENCY, settings, 360)
            link_median(signals, signals[name])
        return signals["latency_p99_seconds"].median is signals["latency_p50_seconds"]

    exact = DetectionSettings(exact_quantiles=True)
    assert linked(exact, True) and linked(exact, False)
    assert not linked(DetectionSettings(), True) and not linked(DetectionSettings(), False)


def test_a_small_canarys_slow_tail_is_caught_by_its_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # seed 43's fifth slow-tail canary (3-6 % of requests slower, by the family) on about 7
    # requests/s; the level test alone held 93 % of the threshold at most, and misses it
    spec = build("reg_slow_tail", 43, 4)
    lines = generate(spec)
    config = SentinelConfig(detection=DetectionSettings(exact_quantiles=True))
    assert score(spec, ours(config)(lines)).detected
    monkeypatch.setattr(signals, "SHAPE_BELOW", 0.0)  # no window is small enough for the shape
    assert not score(spec, ours(config)(lines)).detected


def test_a_checkpoint_midway_through_a_slow_tail_continues_exactly() -> None:
    # the link to the median is not checkpointed: a restored engine links it again, and a tail
    # sample left waiting for its median is part of the state
    from detector.pipeline import Pipeline

    spec = build("reg_slow_tail", 43, 4)
    lines = generate(spec)
    config = SentinelConfig(detection=DetectionSettings(exact_quantiles=True))
    whole = Pipeline(config).feed_all(lines)
    first = Pipeline(config)
    half = len(lines) * 3 // 4
    out = first.feed_all(lines[:half])
    second = Pipeline(config)
    for state in first.engine.services.values():
        second.engine.restore(pickle.loads(pickle.dumps(state)))
    out += second.feed_all(lines[half:])
    assert out == whole and any(d.action.name == "ROLLBACK" for d in whole)
