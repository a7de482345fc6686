"""The peer judges behave as their documentation says, on tiny hand-made series."""

from __future__ import annotations

import json
import random

import pytest

from benchmarks.peers import flagger, kayenta
from benchmarks.peers.mannwhitney import shift_interval
from benchmarks.peers.series import Series, parse_records

START = 10_000.0


def _rec(ts: float, role: str, signal: str, value: float, count: int = 100) -> str:
    return json.dumps(
        {"ts": ts, "service": "s", "role": role, "signal": signal, "value": value, "count": count}
    )


def _rollout(
    minutes: int,
    canary_p99: float = 0.1,
    canary_err: float = 0.0,
    canary_requests: int = 100,
    canary_reports: bool = True,
    history: bool = True,
    seed: int = 0,
) -> Series:
    """10 s samples: baseline history for an hour, then both sides for ``minutes``."""
    rng = random.Random(seed)
    lines = []
    t = START - (3600.0 if history else 0.0)
    while t < START + minutes * 60:
        t += 10.0
        for role in ("baseline", "canary"):
            if role == "canary" and (t <= START or not canary_reports):
                continue
            canary = role == "canary"
            p99 = (canary_p99 if canary else 0.1) * rng.uniform(0.95, 1.05)
            p50 = 0.03 * rng.uniform(0.95, 1.05)
            n = canary_requests if canary else 1000
            err = canary_err if canary else 0.001
            lines += [
                _rec(t, role, "latency_p99_seconds", p99, n),
                _rec(t, role, "latency_p50_seconds", p50, n),
                _rec(t, role, "error_rate", err, n),
                _rec(t, role, "requests_per_second", n / 10, n),
            ]
    return parse_records(lines)


# ---- Flagger -----------------------------------------------------------------------------


def test_flagger_passes_a_healthy_canary() -> None:
    assert flagger.judge(_rollout(20)).rollback_ts is None


def test_flagger_rolls_back_after_threshold_failed_checks_one_per_interval() -> None:
    v = flagger.judge(_rollout(20, canary_p99=0.3))
    # fails every check from the first (at +60 s); the 5th failure rolls back
    assert v.rollback_ts == pytest.approx(START + 10.0 + 5 * 60.0)
    assert "request-duration" in v.reason


def test_flagger_counts_no_data_as_a_failed_check() -> None:
    v = flagger.judge(_rollout(20, canary_requests=0))
    assert v.rollback_ts is not None
    assert "no values found" in v.reason


def test_flagger_failed_checks_are_cumulative() -> None:
    # checks alternate fail/pass; the counter never resets: the 5th failure (9th check) rolls back
    s = _rollout(30)
    err = s.get("canary", "error_rate")
    cfg = flagger.FlaggerConfig()
    for i, ts in enumerate(err.ts):
        minute = int((ts - s.canary_start - 1e-6) // 60) if s.canary_start else 0
        if minute % 2 == 0:
            err.value[i] = 0.05
    v = flagger.judge(s, cfg)
    assert v.rollback_ts == pytest.approx(s.canary_start + 9 * 60.0 if s.canary_start else 0.0)


def test_flagger_success_rate_threshold() -> None:
    assert flagger.judge(_rollout(20, canary_err=0.02)).rollback_ts is not None
    assert flagger.judge(_rollout(20, canary_err=0.005)).rollback_ts is None


def test_flagger_p99_bound_comes_from_the_baseline_history() -> None:
    # 1.4x the normal P99 stays inside the 1.5x headroom
    assert flagger.judge(_rollout(20, canary_p99=0.14)).rollback_ts is None
    assert flagger.judge(_rollout(20, canary_p99=0.16)).rollback_ts is not None


# ---- Kayenta -----------------------------------------------------------------------------


def test_hodges_lehmann_shift_and_interval() -> None:
    rng = random.Random(1)
    y = [rng.gauss(0, 1) for _ in range(60)]
    x = [rng.gauss(3, 1) for _ in range(60)]
    r = shift_interval(x, y, 0.98)
    assert r.lower < r.estimate < r.upper
    assert 2.5 < r.estimate < 3.5 and r.lower > 2.0
    same = shift_interval(y, y, 0.98)
    assert same.estimate == 0.0 and same.lower < 0.0 < same.upper


def test_kayenta_classifier() -> None:
    cfg = kayenta.KayentaConfig()
    rng = random.Random(2)
    base = [rng.gauss(100, 5) for _ in range(60)]
    assert kayenta.classify([v * 1.5 for v in base], base, cfg) == "High"
    assert kayenta.classify(list(base), base, cfg) == "Pass"
    assert kayenta.classify([], base, cfg) == "Nodata"
    # significant but below allowedIncrease (meanRatio 1.05 < 1.1): Pass
    assert (
        kayenta.classify([v + 5 for v in base], [v + rng.gauss(0, 0.1) for v in base], cfg)
        == "Pass"
    )
    # a decrease never fails an increase-direction metric
    assert kayenta.classify([v * 0.5 for v in base], base, cfg) == "Pass"


def test_kayenta_zero_heavy_error_series_pass() -> None:
    # Kayenta #426: canary [0,1,2,1,0,0]-like errors against an all-zero baseline are a Pass
    cfg = kayenta.KayentaConfig()
    assert kayenta.classify([0, 1, 2, 1, 0, 0] * 10, [0.0] * 60, cfg) == "Pass"


def test_kayenta_scores_groups_and_zeroes_on_half_nodata() -> None:
    s = _rollout(20, canary_p99=0.2)
    score, results = kayenta.score(s, START, START + 600, kayenta.KayentaConfig())
    assert results["latency_p99_seconds"] == "High"
    assert score == pytest.approx(75.0)  # latency group 50, errors group 100
    no_canary = _rollout(20, canary_reports=False)
    assert kayenta.score(no_canary, START, START + 600, kayenta.KayentaConfig())[0] == 0.0


def test_kayenta_one_high_metric_fails_only_the_final_judgement() -> None:
    s = _rollout(25, canary_p99=0.2)
    v = kayenta.judge(s)
    # intermediate judgements (10, 20 min) score 75 = marginal: continue; the final needs 95
    last = s.get("canary", "error_rate").ts[-1]
    assert v.rollback_ts == pytest.approx(last)


def test_kayenta_two_high_metrics_fail_the_first_judgement() -> None:
    s = _rollout(25, canary_p99=0.2, canary_err=0.05)
    v = kayenta.judge(s)
    assert v.rollback_ts == pytest.approx(START + 10.0 + 600.0)


def test_kayenta_passes_a_healthy_canary() -> None:
    assert kayenta.judge(_rollout(25)).rollback_ts is None
