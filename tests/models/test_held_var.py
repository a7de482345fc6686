"""The canary's noise variance is held while the mean-shift test holds evidence.

A slow tail widens the spread of a small canary's p99 as much as it lifts its level; judged by a
variance that learned that spread, the regression hides itself. These tests pin that the held
variance catches such a regression that the learned one misses, that it leaves a quiet canary's
variance alone, that less traffic may still raise it, and that old checkpoints restore.
"""

from __future__ import annotations

import math
import pickle
import random

import pytest

from models.compare import MeanShiftTest, alarm_threshold

M = math.log(1.2)
THRESHOLD = alarm_threshold(0.01, 360)
SD = 0.13  # a small canary's p99 log-ratio while healthy
REGIME = math.log(80.0)


def _tail_regression(t: MeanShiftTest, rng: random.Random) -> int | None:
    """30 healthy samples, then 150 whose level is 1.3x and whose spread is 2.5x: the variance
    estimate (an EW mean, as the noise tracker's) follows the spread. The index of the first
    failed check counted from the onset, if any."""
    est = SD * SD
    for i in range(180):
        sd, level = (SD, 0.0) if i < 30 else (2.5 * SD, math.log(1.3))
        x = level + rng.gauss(0.0, sd)
        est += (sd * sd - est) * 0.05
        if t.update(x, 1.0, t.held_var(est), regime=REGIME).failed:
            return i - 30
    return None


def test_a_regression_that_widens_the_spread_is_caught_with_the_held_variance() -> None:
    caught = [_tail_regression(MeanShiftTest(M, THRESHOLD), random.Random(s)) for s in range(60)]
    assert all(c is None or c >= 0 for c in caught), caught  # never before the onset
    assert sum(c is not None for c in caught) >= 26, caught


def test_judged_by_the_learned_variance_the_same_regression_mostly_hides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(MeanShiftTest, "QUIET_VAR_GROWTH", math.inf)
    caught = [_tail_regression(MeanShiftTest(M, THRESHOLD), random.Random(s)) for s in range(60)]
    assert sum(c is not None for c in caught) <= 17, caught


def test_without_evidence_the_variance_is_the_estimate() -> None:
    t = MeanShiftTest(M, THRESHOLD)
    for v in (0.01, 0.04, 0.2):
        assert t.held_var(v) == v
        t.update(-0.1, 1.0, v, regime=REGIME)
    assert t.quiet_var == 0.2


def _with_evidence(regime: float) -> MeanShiftTest:
    t = MeanShiftTest(M, THRESHOLD)
    t.update(0.0, 1.0, t.held_var(0.01), regime=regime)
    while max(t.cusum) < MeanShiftTest.OWN_GATE * THRESHOLD:
        t.update(0.5, 1.0, t.held_var(0.01), regime=regime)
    return t


def test_with_evidence_the_variance_may_grow_only_so_much() -> None:
    t = _with_evidence(REGIME)
    growth = MeanShiftTest.QUIET_VAR_GROWTH
    assert t.held_var(0.012) == 0.012
    assert t.held_var(0.1) == pytest.approx(growth * 0.01)


def test_less_traffic_may_still_raise_the_held_variance() -> None:
    t = _with_evidence(REGIME)
    # the canary's count halves (its EW regime follows): quantile noise doubles
    for _ in range(30):
        t.update(0.5, 1.0, t.held_var(0.01), regime=REGIME - math.log(2.0))
    shift = t.quiet_regime - t.regime
    assert shift == pytest.approx(math.log(2.0), rel=1e-3)
    assert t.held_var(1.0) == pytest.approx(MeanShiftTest.QUIET_VAR_GROWTH * 0.01 * math.exp(shift))


def test_a_checkpoint_from_before_the_held_variance_restores() -> None:
    t = _with_evidence(REGIME)
    state = {k: getattr(t, k) for k in MeanShiftTest.__slots__}
    for k in ("quiet_var", "quiet_regime"):
        del state[k]
    old = MeanShiftTest.__new__(MeanShiftTest)
    old.__setstate__((None, pickle.loads(pickle.dumps(state))))
    assert old.held_var(0.3) == 0.3  # never quiet since the restore: not held
    old.update(-1.0, 1.0, 0.01)
    old.update(-1.0, 1.0, 0.01)
    assert max(old.cusum) < MeanShiftTest.OWN_GATE * THRESHOLD
    assert old.held_var(0.02) == 0.02 and old.quiet_var == 0.02
