"""Latency quantiles read from histograms: Prometheus's ``histogram_quantile`` rules, and what
wide buckets do to two healthy sides a few per cent apart."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest

from benchmarks import canary_scenarios as cs
from benchmarks.scenarios import build, generate, histogram
from benchmarks.scenarios.simulate import mixture_cdf
from config.detection import DetectionSettings
from config.schema import SentinelConfig

BOUNDS = np.array([0.1, 0.2, 0.4])


def test_doctests() -> None:
    assert doctest.testmod(histogram).failed == 0


@pytest.mark.parametrize(
    ("q", "cumulative", "expected"),
    [
        (0.5, [10.0, 30.0, 40.0, 40.0], 0.15),  # rank 20: half-way into (0.1, 0.2]
        (0.1, [10.0, 30.0, 40.0, 40.0], 0.04),  # first bucket starts at 0
        (0.25, [10.0, 30.0, 40.0, 40.0], 0.1),  # rank 10 is the first bucket's last
        (0.25, [10.0, 10.0, 40.0, 40.0], 0.1),  # the first bucket reaching the rank, not past
        (0.99, [10.0, 30.0, 40.0, 50.0], 0.4),  # rank 49.5 in +Inf: the highest finite bound
        (0.99, [0.0, 0.0, 2.0, 2.0], 0.398),  # two requests, both in (0.2, 0.4]
        (0.5, [0.0, 0.0, 0.0, 0.0], math.nan),  # empty
    ],
)
def test_histogram_quantile_follows_prometheus(
    q: float, cumulative: list[float], expected: float
) -> None:
    got = histogram.histogram_quantile(q, BOUNDS, np.array(cumulative))
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected)


def _p99(layout: str, median: float, n: int = 50_000) -> float:
    mu = np.array([math.log(median)])
    zero = np.zeros(1)
    rng = np.random.default_rng(1)
    _, p99 = histogram.quantiles(
        layout, 0.5, mu, zero, zero, np.array([float(n)]), rng, mixture_cdf, 400
    )
    return float(p99[0])


def test_wide_buckets_turn_a_few_per_cent_into_a_large_p99_gap() -> None:
    # true p99 = median * exp(0.5 * 2.326) = 3.2 * median: just above the 0.1 s bound
    base, slower = 0.1 / 3.2 * 1.005, 0.1 / 3.2 * 1.005 * 1.03
    true_gap = 1.03
    prom = _p99("prometheus", slower) / _p99("prometheus", base)
    fine = _p99("x1.2", slower) / _p99("x1.2", base)
    assert prom > 1.15  # 3 % slower reads as more than the 10 % minimum effect
    assert abs(fine - true_gap) < 0.03  # narrow buckets read close to the truth


def test_histogram_p99_is_read_back_from_bucket_bounds() -> None:
    spec = build("healthy_plain", 4, 0)
    exact = generate(spec)
    assert generate(spec, "exact") == exact
    hist = generate(spec, "prometheus")
    assert hist != exact
    bounds = histogram.LAYOUTS["prometheus"]
    p99 = [
        r["value"]
        for r in map(json.loads, hist)
        if r["signal"] == "latency_p99_seconds" and r["role"] == "baseline"
    ]
    # a reading is a bucket's bound or lies inside a bucket, never past the highest bound
    assert p99 and all(0.0 < v <= bounds[-1] for v in p99)
    with pytest.raises(ValueError, match="unknown quantiles 'nope'"):
        generate(spec, "nope")


def test_cli_takes_the_quantiles_and_reports_them(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--instances", "1", "--families", "healthy_plain", "--judges", "flagger"]
    assert cs.main([*argv, "--quantiles", "x1.2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["quantiles"] == "x1.2"
    with pytest.raises(SystemExit):
        cs.main([*argv, "--quantiles", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_our_judge_is_told_how_quantiles_are_taken_unless_asked_not_to(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--instances", "1", "--families", "healthy_plain", "--judges", "flagger", "--json"]

    def told(*extra: str) -> tuple[list[float], bool]:
        assert cs.main([*argv, *extra]) == 0
        doc = json.loads(capsys.readouterr().out)
        return doc["histogram_buckets"], doc["exact_quantiles"]

    assert told("--quantiles", "x2") == (list(histogram.LAYOUTS["x2"]), False)
    assert told() == ([], True)
    assert told("--quantiles", "x2", "--quantiles-unknown") == ([], False)
    assert told("--buckets-unknown") == ([], False)


def test_a_warming_canary_at_a_bucket_bound_is_rolled_back_only_when_the_buckets_are_unknown() -> (
    None
):
    # seed 20's third warm-up canary: both p99s sit just under the 0.1 s bound, and the
    # canary's, a few per cent slower as it warms, reads 1.2-1.6x its baseline's past it
    spec = build("healthy_warmup", 20, 2)
    lines = generate(spec, "prometheus")
    told = SentinelConfig(detection=DetectionSettings(histogram_buckets="prometheus"))
    unknown = cs.score(spec, cs.ours(SentinelConfig())(lines))
    known = cs.score(spec, cs.ours(told)(lines))
    assert unknown.false_rollback and not known.false_rollback
    assert known.rollback_ts is None
