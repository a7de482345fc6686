"""NAB's scoring rules on tiny hand-made files, where every figure can be worked out by hand."""

from __future__ import annotations

import math

import pytest

from benchmarks.nab_scoring import (
    DEFAULT_PROFILES,
    DataFile,
    Profile,
    map_windows,
    normalise,
    probation_rows,
    raw_score,
    row_weights,
    scaled_sigmoid,
    sweep,
)

STANDARD = DEFAULT_PROFILES[0]
LOW_FN = DEFAULT_PROFILES[2]


def _file(n: int = 100, windows: tuple[tuple[int, int], ...] = ((40, 49),)) -> DataFile:
    return DataFile("cat/f.csv", tuple(str(i) for i in range(n)), (0.0,) * n, windows)


def _scores(n: int, hits: dict[int, float]) -> list[float]:
    return [hits.get(i, 0.0) for i in range(n)]


def _credit(y: float) -> float:
    return scaled_sigmoid(y) / scaled_sigmoid(-1.0)


def test_scaled_sigmoid_matches_the_published_values() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0


def test_probationary_period_is_15_percent_capped_at_750_rows() -> None:
    assert probation_rows(100) == 15
    assert probation_rows(1000) == 150
    assert probation_rows(22695) == 750


def test_normalisation_reproduces_the_artime_check() -> None:
    # ARTime's standard raw score 57.66 over NAB's 116 windows is 74.85 normalised.
    assert normalise(57.66, 116.0, -116.0) == pytest.approx(74.85, abs=0.005)


def test_null_and_perfect_detectors_score_0_and_100() -> None:
    f = _file()
    for p in DEFAULT_PROFILES:
        assert sweep([f], [_scores(100, {})], p).normalised == 0.0
        assert sweep([f], [_scores(100, {40: 1.0})], p).normalised == pytest.approx(100.0)


def test_window_credit_falls_from_left_edge_to_right_edge() -> None:
    w = dict(
        (i + probation_rows(100), v) for i, v in enumerate(row_weights(100, ((40, 49),), STANDARD))
    )
    assert w[40][0] == 0 and w[40][1] == pytest.approx(1.0)
    assert w[45][0] == 0 and w[45][1] == pytest.approx(_credit(-0.5))
    assert w[49][0] == 0 and w[49][1] == pytest.approx(_credit(-0.1))


def test_false_positives_cost_full_weight_before_a_window_and_less_just_after() -> None:
    w = dict(
        (i + probation_rows(100), v) for i, v in enumerate(row_weights(100, ((40, 49),), STANDARD))
    )
    assert w[20][0] == -1 and w[20][1] == pytest.approx(-0.11)
    # just after the window: y = (i - right) / (width - 1)
    assert w[50][0] == -1 and w[50][1] == pytest.approx(0.11 * scaled_sigmoid(1 / 9))
    assert w[99][0] == -1 and w[99][1] == pytest.approx(-0.11)  # y >= 3: full cost
    assert 10 not in w  # probationary rows are not scored


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    f = _file()
    both = raw_score([f], [_scores(100, {44: 1.0, 47: 1.0})], STANDARD, 0.5)
    assert both == pytest.approx(_credit(-0.6))


def test_sweep_finds_the_best_threshold() -> None:
    # FP before the window at 0.95, TP mid-window at 0.9, FP long after at 0.5.
    f = _file()
    sc = _scores(100, {20: 0.95, 45: 0.9, 70: 0.5})
    r = sweep([f], [sc], STANDARD)
    assert r.threshold == 0.9
    assert r.raw == pytest.approx(-0.11 + _credit(-0.5))
    assert raw_score([f], [sc], STANDARD, 0.95) == pytest.approx(-1.0 - 0.11)
    assert raw_score([f], [sc], STANDARD, 0.5) == pytest.approx(
        -0.11 + _credit(-0.5) + 0.11 * scaled_sigmoid(21 / 9)
    )


def test_missed_window_costs_fn_weight_per_profile() -> None:
    f = _file()
    assert raw_score([f], [_scores(100, {})], LOW_FN, 0.5) == -2.0
    r = sweep([f], [_scores(100, {})], LOW_FN)
    assert (r.raw_perfect, r.raw_null) == (1.0, -2.0)


def test_a_heavier_fp_weight_raises_the_chosen_threshold() -> None:
    f = _file(200, ((100, 119),))
    # one early weak TP candidate at 0.3 drags in three FPs at 0.4; a late TP at 0.8
    sc = _scores(200, {105: 0.3, 60: 0.4, 61: 0.4, 62: 0.4, 118: 0.8})
    cheap = sweep([f], [sc], Profile("cheap", 1.0, 1.0, 0.01))
    dear = sweep([f], [sc], Profile("dear", 1.0, 1.0, 0.5))
    assert cheap.threshold == 0.3
    assert dear.threshold == 0.8


def test_windows_map_from_microsecond_labels_to_rows() -> None:
    ts = [
        "2014-04-10 07:00:00",
        "2014-04-10 07:05:00",
        "2014-04-10 07:10:00",
        "2014-04-10 07:15:00",
    ]
    assert map_windows(ts, [["2014-04-10 07:05:00.000000", "2014-04-10 07:10:00.000000"]]) == (
        (1, 2),
    )


def test_scores_must_cover_every_row() -> None:
    with pytest.raises(ValueError, match="scores"):
        sweep([_file()], [[0.0] * 99], STANDARD)


def test_sweep_never_alarm_is_an_option() -> None:
    f = _file()
    r = sweep([f], [_scores(100, {20: 0.9, 21: 0.8})], STANDARD)
    assert r.threshold == math.inf
    assert r.raw == -1.0
